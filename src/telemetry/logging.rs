//! Logs: text on a terminal or JSON for collectors; a line per denied admission request, and
//! a span per request at debug.

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber (once; later calls keep the first). `RUST_LOG` overrides
/// the default filter.
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // rustls warns for every client that sends an IP address as SNI: not fipsgate's news.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rustls=error"));
    // Colour only on a terminal: escape codes would litter collected container logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
