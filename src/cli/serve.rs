//! `partnergate serve`.

use super::{CliError, CliResult, Context, ServeCommand};
use crate::config::{LogFormat, ServerConfig};

pub async fn run(_ctx: &Context, args: ServeCommand, log_format: LogFormat) -> CliResult {
    let config = ServerConfig::from_args(&args.database, &args.keys, &args.serve).map_err(CliError)?;
    log::info!("database: {}", crate::store::redact_url(&config.database_url));
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let server = crate::start(config).await?;
    // The server's own log line says where it listens; when `RUST_LOG` hides it, this says it instead (in text
    // only: a JSON stream stays JSON).
    if log_format == LogFormat::Text && !log::log_enabled!(target: "partnergate", log::Level::Info) {
        eprintln!("partnergate listening on {scheme}://{}", server.addr);
    }
    server.wait().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use crate::config::ServerConfig;

    /// `partnergate serve` with `args`, as `run` resolves it.
    fn serve_config(args: &[&str]) -> Result<ServerConfig, String> {
        let argv = ["partnergate", "serve"].into_iter().chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).map_err(|err| err.to_string())?;
        let Command::Serve(serve) = cli.command else { panic!("serve parses as serve") };
        ServerConfig::from_args(&serve.database, &serve.keys, &serve.serve)
    }

    #[test]
    fn the_maximum_secret_age_is_a_serve_setting_of_at_most_ten_years() {
        assert_eq!(serve_config(&[]).unwrap().secret_policy.default_max_age_days, 0, "no maximum by default");
        let config = serve_config(&["--secret-max-age-days", "90"]).unwrap();
        assert_eq!(config.secret_policy.default_max_age_days, 90);
        assert!(serve_config(&["--secret-max-age-days", "3651"]).is_err());
    }

    #[test]
    fn a_rate_limit_store_is_a_redis_url_with_an_optional_key_prefix() {
        let config = serve_config(&["--rate-limit-store", "redis://127.0.0.1:6379/1"]).unwrap();
        let store = config.rate_limit_store.expect("the store is configured");
        assert_eq!((store.url.as_str(), store.key_prefix.as_str()), ("redis://127.0.0.1:6379/1", "pg:rl:"));
        let config =
            serve_config(&["--rate-limit-store", "redis://cache", "--rate-limit-key-prefix", "eu:rl:"]).unwrap();
        assert_eq!(config.rate_limit_store.unwrap().key_prefix, "eu:rl:");
        let refused = serve_config(&["--rate-limit-store", "http://:hunter2@cache:6379"]).err().unwrap();
        assert!(refused.contains("only redis://") && !refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn console_sign_in_settings_derive_the_redirect_uri_and_keep_someone_able_to_sign_in() {
        let provider = [
            "--issuer",
            "https://auth.example.com/",
            "--console-oidc-issuer",
            "https://idp.example.com/",
            "--console-oidc-client-id",
            "partnergate",
            "--console-oidc-client-secret",
            "s",
            "--console-oidc-operator-groups",
            "ops,platform",
        ];
        let console = serve_config(&provider).unwrap().console;
        let oidc = console.provider.expect("a provider");
        assert_eq!(oidc.redirect_uri, "https://auth.example.com/console/oidc/callback");
        assert_eq!(oidc.issuer, "https://idp.example.com");
        assert_eq!(oidc.operator_groups, ["ops", "platform"]);
        assert!(console.client_sign_in && console.sessions.secure_cookie);
        assert!(!format!("{oidc:?}").contains("client_secret"), "the secret stays out of logs");
        let off = serve_config(&[&provider[..], &["--console-client-signin", "false"]].concat()).unwrap().console;
        assert!(!off.client_sign_in);
        let locked_out = serve_config(&["--console-client-signin", "false"]).err().unwrap();
        assert!(locked_out.contains("needs an identity provider"), "{locked_out}");
        assert!(serve_config(&["--console-oidc-issuer", "https://idp.example.com"]).is_err(), "id and secret required");
    }
}
