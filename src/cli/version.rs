//! `fipsgate version`: the build, its cryptographic module and that module's CMVP standing.

use clap::Args;

use crate::infra::crypto;

/// `fipsgate version`
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl VersionArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let Self { json } = self;
        crypto::install();
        let module = crypto::module();
        let version = env!("CARGO_PKG_VERSION");
        if json {
            let out = serde_json::json!({ "version": version, "crypto": module });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            let mode = if module.fips_mode { "on" } else { "off" };
            println!("fipsgate {version}");
            println!("crypto module: {} ({})", module.module, module.crates);
            println!("FIPS mode: {mode}");
            println!("CMVP: {}", module.cmvp());
        }
        Ok(())
    }
}
