//! The PostgreSQL test harness (`tests/support/postgres.rs`) against the real server: a client
//! connects and queries, and dropping the harness leaves no process and no files behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[path = "support/postgres.rs"]
mod postgres;

use std::time::Instant;

use postgres::Postgres;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        // Ends with an error when the server goes away; the queries report that.
        let _ = connection.await;
    });
    client
}

#[tokio::test]
async fn a_client_connects_and_selects_one() {
    let started = Instant::now();
    let Some(pg) = tokio::task::spawn_blocking(Postgres::start).await.unwrap() else {
        return;
    };
    eprintln!("private PostgreSQL ready in {:?}", started.elapsed());
    let client = connect(&pg.url()).await;
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, "everlock");
    // A second database on the same server, for tests that share one.
    let other = connect(&pg.create_database("second")).await;
    let row = other
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "second");
    drop(client);
    drop(other);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[test]
fn dropping_the_harness_stops_the_server_and_removes_its_files() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let pid = pg.pid();
    let data_dir = pg.data_dir();
    let root = pg.root().to_owned();
    let port = pg.port();
    assert!(postgres::is_alive(pid), "the postmaster runs");
    assert!(
        !postgres::leftover_processes(pid, &data_dir).is_empty(),
        "the scan finds the running server"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    drop(pg);

    let left = postgres::leftover_processes(pid, &data_dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(!postgres::is_alive(pid));
    assert!(!root.exists(), "{} was not removed", root.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port}"
    );
}
