//! `fipsgate version`: the build, its cryptographic module and that module's CMVP standing.

use clap::Args;

use crate::infra::crypto;

use super::output::{Output, document};

/// `fipsgate version`
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// `table` and `wide` print lines (`wide` adds the platform and the build's FIPS feature);
    /// `json` and `yaml` the same document.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Print JSON (kept for older scripts; `-o json`).
    #[arg(long, hide = true, conflicts_with = "output")]
    pub json: bool,
}

impl VersionArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let Self { output, json } = self;
        let output = if json { Output::Json } else { output };
        crypto::install();
        let module = crypto::module();
        let version = env!("CARGO_PKG_VERSION");
        let text = match output {
            Output::Json | Output::Yaml => document(
                &serde_json::json!({ "version": version, "crypto": module }),
                output,
            )?,
            Output::Table | Output::Wide => {
                let mode = if module.fips_mode { "on" } else { "off" };
                let mut text = format!(
                    "fipsgate {version}\ncrypto module: {} ({})\nFIPS mode: {mode}\nCMVP: {}\n",
                    module.module,
                    module.crates,
                    module.cmvp()
                );
                if output == Output::Wide {
                    let feature = if crypto::FIPS_BUILD { "on" } else { "off" };
                    text.push_str(&format!(
                        "platform: {}/{}\nfips feature: {feature}\n",
                        std::env::consts::OS,
                        std::env::consts::ARCH
                    ));
                }
                text
            }
        };
        super::emit(&text)
    }
}
