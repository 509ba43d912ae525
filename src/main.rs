use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = partnergate::cli::Cli::parse();
    partnergate::cli::logging::init(cli.log_format);
    if let Err(err) = partnergate::cli::run(cli).await {
        // Errors quote what the operator typed (a secret where an id belongs) and database causes.
        eprintln!("error: {}", partnergate::redact::all(&err.to_string()));
        std::process::exit(1);
    }
}
