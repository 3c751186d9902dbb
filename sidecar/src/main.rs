//! `scada-sidecar`: parses arguments, sets up logging, runs the server.

use std::path::PathBuf;
use std::process::ExitCode;

use scada_sidecar::{env, Config};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
scada-sidecar: delivers events from PHP (ext scada_broadcast) to Redis and
Pusher-protocol servers (Pusher, Reverb, Soketi, Sockudo).

USAGE:
    scada-sidecar [--config FILE] [--check | --health]

OPTIONS:
    --config FILE   TOML configuration (environment variables override it)
    --check         validate the configuration, print it (secrets redacted), exit
    --health        ask the running sidecar's status socket; exit 0 if it answers
                    (for container health checks)
    --version       print the version
    --help          this text

Configured by Laravel's environment names: REDIS_URL or REDIS_HOST, REDIS_PORT,
REDIS_PASSWORD, REDIS_DB, REDIS_PREFIX (default: slug(APP_NAME)_database_),
PUSHER_APP_ID, PUSHER_APP_KEY, PUSHER_APP_SECRET, PUSHER_HOST, PUSHER_PORT,
PUSHER_SCHEME, and SCADA_SIDECAR_SOCKET, SCADA_SPOOL_DIR, SCADA_DATA_DIR,
SCADA_STATUS_ADDR, SCADA_SOCKET_GROUP, SCADA_THROTTLE, SCADA_PRIORITY, SCADA_LOG.
";

fn main() -> ExitCode {
    let mut config_path: Option<PathBuf> = None;
    let mut check = false;
    let mut health = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => config_path = Some(p.into()),
                None => {
                    eprintln!("scada-sidecar: --config needs a file");
                    return ExitCode::from(2);
                }
            },
            "--check" => check = true,
            "--health" => health = true,
            "--version" | "-V" => {
                println!("scada-sidecar {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("scada-sidecar: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    if health {
        // No logging set-up: a health check prints one line.
        return match Config::load(config_path.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|c| scada_sidecar::status::probe(&c.server.status_socket()))
        {
            Ok(summary) => {
                println!("scada-sidecar healthy: {summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("scada-sidecar unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let filter = std::env::var(env::SCADA_LOG)
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();

    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scada-sidecar: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }

    let workers = std::env::var(env::SCADA_WORKER_THREADS)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        // One worker by default: the sidecar shares small machines with PHP, the
        // WebSocket server and Redis, and a single thread switches less
        // (measured: less CPU per event and more throughput on 2 cores).
        .unwrap_or(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name("scada-sidecar")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scada-sidecar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scada_sidecar::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("scada-sidecar: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
