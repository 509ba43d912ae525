use clap::Parser;

#[actix_web::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = partnergate::cli::Cli::parse();
    if let Err(err) = partnergate::cli::run(cli).await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
