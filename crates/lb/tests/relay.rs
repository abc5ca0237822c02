//! Bytes cross the VIP unchanged whatever their size and whoever finishes
//! first (the relay's buffers start small and grow; these sizes sit on
//! the boundaries).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_lb::{Backend, Vip, VipConfig};

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A backend that reads the request to its end, then sends `answer` bytes
/// and closes; returns what it read.
async fn read_then_answer(answer: usize) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        conn.read_to_end(&mut request).await.unwrap();
        conn.write_all(&pattern(answer, 7)).await.unwrap();
        request
    });
    (addr, task)
}

#[tokio::test]
async fn request_and_answer_sizes_around_the_buffer_steps_arrive_whole() {
    let sizes = [
        0, 1, 4095, 4096, 4097, 8192, 65_535, 65_536, 65_537, 1_048_579,
    ];
    let vip = Vip::bind("127.0.0.1:0".parse().unwrap(), VipConfig::default())
        .await
        .unwrap();
    for (i, &up) in sizes.iter().enumerate() {
        let down = sizes[sizes.len() - 1 - i];
        let (addr, backend) = read_then_answer(down).await;
        vip.set_backends(vec![Backend {
            id: format!("b{i}"),
            addr,
        }]);
        let mut conn = TcpStream::connect(vip.local_addr()).await.unwrap();
        conn.write_all(&pattern(up, 3)).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        let request = backend.await.unwrap();
        assert!(
            request == pattern(up, 3),
            "request of {up} bytes arrived as {} different bytes",
            request.len()
        );
        assert!(
            answer == pattern(down, 7),
            "answer of {down} bytes arrived as {} different bytes",
            answer.len()
        );
    }
    assert_eq!(vip.stats().proxied, sizes.len() as u64);
}
