use clap::Parser;

#[actix_web::main]
async fn main() {
    // First, before libpq uses OpenSSL (TLS to PostgreSQL): initialized this way, OpenSSL registers no exit
    // handler. That handler freed OpenSSL's state in `exit` while a pool thread could still be opening a
    // connection with it, and the thread then crashed the process (SIGSEGV) instead of it exiting with its status.
    openssl_sys::init();
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
