#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    fipsgate::cli::main()
}
