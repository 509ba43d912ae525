use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = partnergate::cli::Cli::parse();
    partnergate::cli::logging::init(cli.log_format);
    let outcome = partnergate::cli::run(cli).await;
    // The access lines still batched in memory (see cli::logging).
    log::logger().flush();
    if let Err(err) = outcome {
        // Errors quote what the operator typed (a secret where an id belongs) and database causes.
        eprintln!("error: {}", partnergate::redact::all(&err.to_string()));
        std::process::exit(1);
    }
}
