use clap::Parser;

#[actix_web::main]
async fn main() {
    let cli = partnergate::cli::Cli::try_parse().unwrap_or_else(|err| partnergate::cli::refused_arguments(err));
    let json = cli.json;
    partnergate::cli::logging::init(cli.log_format);
    let outcome = partnergate::cli::run(cli).await;
    // The access lines still batched in memory (see cli::logging).
    log::logger().flush();
    if let Err(err) = outcome {
        partnergate::cli::print_error(json, &err.to_string());
        std::process::exit(1);
    }
}
