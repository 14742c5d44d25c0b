//! TLS to PostgreSQL per the URL's `sslmode`, against real servers: a private cluster whose
//! certificate is signed by a CA made here (verify-full, verify-ca, wrong CA, wrong name,
//! a server without TLS), and the local server the other tests use (require).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use store::cluster::PrivateCluster;
use store::pool::ConnectionConfig;
use store::tls::SslMode;

/// A certificate authority made for one test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses): (certificate, key).
    fn server(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "postgres");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port()
}

/// Whether the connection made per `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let config = ConnectionConfig::parse(url).map_err(|error| error.to_string())?;
    let client = config
        .connect_raw()
        .await
        .map_err(|error| format!("{error:?}"))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn every_sslmode_behaves_as_libpq_says_against_a_server_with_a_private_ca() {
    let dir = std::env::temp_dir().join(format!("threesigma-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let cluster = match PrivateCluster::start(&dir.join("pg"), port) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("skipped: no private PostgreSQL cluster can be started here: {error}");
            return;
        }
    };
    let base = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let localhost = format!("postgres://postgres@localhost:{port}/postgres");

    // Without TLS on the server: prefer falls back to plain, require and verify refuse.
    assert_eq!(encrypted(&base).await, Ok(false), "default is prefer");
    assert_eq!(
        encrypted(&format!("{base}?sslmode=disable")).await,
        Ok(false)
    );
    let refused = encrypted(&format!("{base}?sslmode=require"))
        .await
        .unwrap_err();
    assert!(
        refused.contains("TLS") || refused.contains("SSL"),
        "{refused}"
    );

    // The server's certificate names only "localhost", signed by our CA.
    let ca = TestCa::new("threesigma test CA");
    let (cert, key) = ca.server(&["localhost"]);
    cluster.enable_tls(&cert, &key).unwrap();
    let ca_file = ca.write(&dir, "ca.pem");
    let other_ca_file = TestCa::new("someone else").write(&dir, "other-ca.pem");
    let root = |url: &str, mode: &str, file: &Path| {
        format!("{url}?sslmode={mode}&sslrootcert={}", file.display())
    };

    // prefer and require encrypt without checking the certificate.
    assert_eq!(
        encrypted(&base).await,
        Ok(true),
        "prefer uses TLS when offered"
    );
    assert_eq!(
        encrypted(&format!("{base}?sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&format!("{base}?sslmode=disable")).await,
        Ok(false)
    );

    // verify-full: the right CA and the right name.
    assert_eq!(
        encrypted(&root(&localhost, "verify-full", &ca_file)).await,
        Ok(true)
    );
    let wrong_ca = encrypted(&root(&localhost, "verify-full", &other_ca_file))
        .await
        .unwrap_err();
    assert!(wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");
    let wrong_name = encrypted(&root(&base, "verify-full", &ca_file))
        .await
        .unwrap_err();
    assert!(wrong_name.contains("not valid for name"), "{wrong_name}");

    // verify-ca (and require with a root file, as in libpq) check the chain, not the name.
    assert_eq!(
        encrypted(&root(&base, "verify-ca", &ca_file)).await,
        Ok(true)
    );
    assert_eq!(encrypted(&root(&base, "require", &ca_file)).await, Ok(true));
    let config = ConnectionConfig::parse(&root(&base, "require", &ca_file)).unwrap();
    assert_eq!(config.ssl_mode(), SslMode::VerifyCa);
    let untrusted = encrypted(&root(&base, "require", &other_ca_file))
        .await
        .unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");

    // The verify modes default to the system roots, which do not hold our CA.
    let system = encrypted(&format!("{localhost}?sslmode=verify-full"))
        .await
        .unwrap_err();
    assert!(
        system.contains("UnknownIssuer") || system.contains("no system root"),
        "{system}"
    );

    // Everything a service does goes through the same path: migrations, the pool, the
    // bulk writer's raw connection.
    let verified = root(&localhost, "verify-full", &ca_file);
    store::migrate::run_pending(&verified).await.unwrap();
    store::migrate::ensure_current(&verified).await.unwrap();
    let pool = store::pool::build_pool(&verified, &store::PoolSettings::default()).unwrap();
    store::pool::ping(&pool).await.unwrap();
    let settings = store::PoolSettings::default();
    let writer = store::pool::connection_config(&verified, &settings).unwrap();
    store::bulk::BulkConnection::connect(&writer).await.unwrap();

    drop(pool);

    // The certificates deploy/scripts/db-certs.sh makes for the compose stack pass
    // verify-full for the host name the services use ("postgres", reached here through
    // hostaddr: the name is still what is verified).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/scripts/db-certs.sh");
    let made = dir.join("compose-tls");
    match std::process::Command::new("bash")
        .arg(&script)
        .arg(&made)
        .output()
    {
        Ok(output) if output.status.success() => {
            let read = |name: &str| std::fs::read_to_string(made.join(name)).unwrap();
            cluster
                .enable_tls(&read("server.crt"), &read("server.key"))
                .unwrap();
            let compose = format!(
                "postgres://postgres@postgres:{port}/postgres?hostaddr=127.0.0.1\
                 &sslmode=verify-full&sslrootcert={}",
                made.join("ca.pem").display()
            );
            assert_eq!(encrypted(&compose).await, Ok(true));
            let elsewhere = compose.replace("@postgres:", "@localhost:");
            let refused = encrypted(&elsewhere).await.unwrap_err();
            assert!(refused.contains("not valid for name"), "{refused}");
        }
        outcome => eprintln!("skipped the db-certs.sh check (needs bash and openssl): {outcome:?}"),
    }

    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn require_against_the_local_server_encrypts_or_refuses() {
    let url = store::testing::server_url();
    let plain = if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    };
    let client = ConnectionConfig::parse(&plain)
        .unwrap()
        .connect_raw()
        .await
        .unwrap();
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let required = if url.contains('?') {
        format!("{url}&sslmode=require")
    } else {
        format!("{url}?sslmode=require")
    };
    match encrypted(&required).await {
        Ok(on) => assert!(on && ssl == "on", "ssl={ssl}, encrypted={on}"),
        Err(error) => assert_eq!(ssl, "off", "require failed with TLS on: {error}"),
    }
}
