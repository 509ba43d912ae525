//! A loopback TCP proxy that a test can cut: connections refused, or black-holed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::until;

pub const PASS: u8 = 0;
pub const REFUSE: u8 = 1;
pub const BLACK_HOLE: u8 = 2;

/// A TCP proxy on a fixed loopback port to a server the test cuts (PostgreSQL, Redis). Refusing closes the listening socket (new connections
/// get RST) and every open connection; black-holing keeps every socket open and forwards nothing, as a
/// network that drops packets would. Each change of mode starts new connections afresh.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped on every change of mode: connections of an older epoch stop.
    epoch: Arc<AtomicU8>,
    upstream: SocketAddr,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Arc::new(Proxy {
            addr,
            mode: Arc::new(AtomicU8::new(PASS)),
            epoch: Arc::new(AtomicU8::new(0)),
            upstream,
            listener: Mutex::new(None),
        });
        proxy.listen(listener);
        proxy
    }

    fn listen(self: &Arc<Self>, listener: TcpListener) {
        let proxy = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let proxy = proxy.clone();
                tokio::spawn(async move { proxy.serve(client).await });
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }

    async fn serve(self: Arc<Self>, client: TcpStream) {
        let epoch = self.epoch.load(Ordering::SeqCst);
        if self.mode.load(Ordering::SeqCst) == BLACK_HOLE {
            // Accepted, and then nothing: hold the socket until the mode changes.
            while self.epoch.load(Ordering::SeqCst) == epoch {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return;
        }
        let Ok(server) = TcpStream::connect(self.upstream).await else { return };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let current = |proxy: &Proxy| proxy.epoch.load(Ordering::SeqCst) == epoch;
        let mut up = [0u8; 16 * 1024];
        let mut down = [0u8; 16 * 1024];
        loop {
            tokio::select! {
                read = client_read.read(&mut up) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) if current(&self) => { if server_write.write_all(&up[..n]).await.is_err() { return } }
                    Ok(_) => {}
                },
                read = server_read.read(&mut down) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) if current(&self) => { if client_write.write_all(&down[..n]).await.is_err() { return } }
                    Ok(_) => {}
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if !current(&self) && self.mode.load(Ordering::SeqCst) != BLACK_HOLE {
                // Refused or restored: this connection ends (dropping both halves closes both sockets).
                return;
            }
        }
    }

    pub async fn set(self: &Arc<Self>, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let listening = self.listener.lock().unwrap().is_some();
        match (mode, listening) {
            (REFUSE, true) => {
                if let Some(task) = self.listener.lock().unwrap().take() {
                    task.abort();
                }
                // The aborted task drops the listening socket; wait until the port refuses.
                until(Duration::from_secs(5), "the proxy port refuses", || async {
                    TcpStream::connect(self.addr).await.is_err()
                })
                .await;
            }
            (PASS | BLACK_HOLE, false) => {
                let listener = TcpListener::bind(self.addr).await.expect("the proxy port again");
                self.listen(listener);
            }
            _ => {}
        }
    }
}
