//! Static validation of the deployment files: there is no Docker engine or Kubernetes
//! cluster on the build machine, so these tests read the files the way the tools would and
//! check what matters: each Dockerfile builds the binary it names in a cached dependency
//! layer and runs it as non-root in a distroless stage; the compose file passes
//! `docker-compose config` and wires the stack; every Kubernetes document parses and has the
//! right images, probes, resources, secrets and sidecar flags; docs/OPERATIONS.md documents
//! every setting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The images, their binaries and the ports they serve (README: ingest 8080, query 8081,
/// detector 8082; the CLI image serves nothing).
const IMAGES: [(&str, &str, Option<u16>); 4] = [
    ("ingest", "threesigma-ingest", Some(8080)),
    ("query", "threesigma-query", Some(8081)),
    ("detector", "threesigma-detector", Some(8082)),
    ("cli", "threesigma", None),
];

/// One `FROM ... AS name` stage of a Dockerfile with its instructions (continuations joined).
struct Stage {
    from: String,
    name: String,
    instructions: Vec<String>,
}

fn stages(dockerfile: &str) -> Vec<Stage> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            if !current.trim().is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0].eq_ignore_ascii_case("FROM") {
            stages.push(Stage {
                from: words[1].to_owned(),
                name: words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("AS"))
                    .map(|i| words[i + 1].to_owned())
                    .unwrap_or_default(),
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(line);
        }
    }
    stages
}

fn workspace_binaries() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let text = std::fs::read_to_string(manifest).unwrap();
        let mut in_bin = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin && let Some(name) = line.strip_prefix("name = ") {
                names.insert(name.trim_matches('"').to_owned());
            }
        }
    }
    names
}

#[test]
fn each_dockerfile_builds_its_binary_and_runs_it_as_non_root() {
    let binaries = workspace_binaries();
    for (image, binary, port) in IMAGES {
        let file = format!("Dockerfile.{image}");
        let stages = stages(&read(&file));
        assert!(
            binaries.contains(binary),
            "{file}: no workspace binary {binary}"
        );

        // The builder cooks the dependencies (cached layer) before copying the sources,
        // then builds exactly this binary in release mode.
        let builder = stages
            .iter()
            .find(|s| s.name == "builder")
            .unwrap_or_else(|| panic!("{file}: no builder stage"));
        let position = |needle: &str| {
            builder
                .instructions
                .iter()
                .position(|i| i.contains(needle))
                .unwrap_or_else(|| panic!("{file}: builder has no `{needle}`"))
        };
        let cook = position(&format!(
            "cargo chef cook --release --locked --recipe-path recipe.json --bin {binary}"
        ));
        let sources = position("COPY . .");
        let build = position(&format!("cargo build --release --locked --bin {binary} "));
        assert!(cook < sources && sources < build, "{file}: layer order");
        assert!(
            builder.instructions[0].starts_with("COPY --from=planner"),
            "{file}: the recipe comes from the planner stage"
        );

        // The runtime: distroless, only the binary copied in, a non-root user, the binary
        // as entry point, a health check that the binary itself performs.
        let runtime = stages.last().unwrap();
        assert!(
            runtime.from.starts_with("gcr.io/distroless/cc-debian12"),
            "{file}: runtime base {}",
            runtime.from
        );
        let copies: Vec<&String> = runtime
            .instructions
            .iter()
            .filter(|i| i.starts_with("COPY") || i.starts_with("ADD"))
            .collect();
        assert_eq!(
            copies,
            [&format!(
                "COPY --from=builder /{binary} /usr/local/bin/{binary}"
            )],
            "{file}: the runtime layer holds only the binary"
        );
        let user = runtime
            .instructions
            .iter()
            .rev()
            .find_map(|i| i.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{file}: no USER"));
        let uid = user.split(':').next().unwrap();
        assert!(uid != "0" && uid != "root", "{file}: runs as {user}");
        assert!(
            runtime
                .instructions
                .contains(&format!(r#"ENTRYPOINT ["/usr/local/bin/{binary}"]"#)),
            "{file}: entry point"
        );
        let healthcheck = runtime
            .instructions
            .iter()
            .find(|i| i.starts_with("HEALTHCHECK"))
            .unwrap_or_else(|| panic!("{file}: no HEALTHCHECK"));
        match port {
            Some(port) => {
                assert!(
                    healthcheck.ends_with(&format!(
                        r#"CMD ["/usr/local/bin/{binary}", "--healthcheck"]"#
                    )),
                    "{file}: {healthcheck}"
                );
                assert!(
                    runtime.instructions.contains(&format!("EXPOSE {port}")),
                    "{file}: EXPOSE {port}"
                );
            }
            None => assert_eq!(healthcheck, "HEALTHCHECK NONE"),
        }
        // The builder's Debian release matches the runtime's, so glibc does too.
        assert!(
            stages[0].from.ends_with("-bookworm"),
            "{file}: {}",
            stages[0].from
        );
    }
    let ignore = read(".dockerignore");
    for entry in ["target/", ".git/", "*.env"] {
        assert!(ignore.lines().any(|l| l == entry), ".dockerignore: {entry}");
    }
}

/// A YAML mapping with `<<` merge keys resolved (as docker compose does).
fn merged(value: &Yaml) -> Yaml {
    match value {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(base) = hash.get(&Yaml::String("<<".to_owned()))
                && let Yaml::Hash(base) = merged(base)
            {
                out.extend(base);
            }
            for (key, value) in hash {
                if key.as_str() != Some("<<") {
                    out.insert(key.clone(), merged(value));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn has_key(value: &Yaml, key: &str) -> bool {
    !value[key].is_badvalue()
}

#[test]
fn compose_file_is_valid_and_wires_the_stack() {
    // docker-compose's own validation (Debian's docker-compose package; CI installs it).
    match Command::new("docker-compose")
        .args(["--env-file", "example.env", "config", "--quiet"])
        .current_dir(root())
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "docker-compose config: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("docker-compose not installed: only the structural checks ran");
        }
        Err(error) => panic!("CI must have docker-compose: {error}"),
    }

    let compose = merged(&YamlLoader::load_from_str(&read("docker-compose.yml")).unwrap()[0]);
    let services = &compose["services"];
    let postgres = &services["postgres"];
    assert!(has_key(postgres, "healthcheck"), "postgres healthcheck");
    assert!(
        postgres["volumes"][0]
            .as_str()
            .unwrap()
            .ends_with(":/var/lib/postgresql/data"),
        "postgres data on a volume"
    );
    let migrate = &services["migrate"];
    assert_eq!(migrate["command"][0].as_str(), Some("migrate"));
    assert_eq!(
        migrate["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(migrate["restart"].as_str(), Some("no"), "one-shot");
    for (image, _, _) in IMAGES {
        let name = if image == "cli" { "migrate" } else { image };
        let service = &services[name];
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some(format!("Dockerfile.{image}").as_str()),
            "{name}"
        );
        assert!(
            service["image"]
                .as_str()
                .unwrap()
                .starts_with(&format!("threesigma/{image}:")),
            "{name}"
        );
        if image != "cli" {
            assert_eq!(
                service["depends_on"]["migrate"]["condition"].as_str(),
                Some("service_completed_successfully"),
                "{name} waits for migrations"
            );
            assert!(
                service["environment"]["DATABASE_URL"]
                    .as_str()
                    .unwrap()
                    .contains("${POSTGRES_PASSWORD"),
                "{name}: the password comes from .env"
            );
        }
    }
    // Scalable ingest: no host port of its own; the proxy publishes one.
    assert!(
        !has_key(&services["ingest"], "ports"),
        "ingest must not bind a host port"
    );
    assert!(has_key(&services["ingest-proxy"], "ports"));
    assert!(read("deploy/compose/nginx.conf").contains("http://ingest:8080"));
    // Secrets only from the git-ignored .env; the detector gets no token secret.
    assert!(!has_key(&services["detector"]["environment"], "JWT_SECRET"));
    for name in ["ingest", "query"] {
        assert!(
            services[name]["environment"]["JWT_SECRET"]
                .as_str()
                .unwrap()
                .starts_with("${JWT_SECRET:?"),
            "{name}"
        );
    }
    let gitignore = read(".gitignore");
    assert!(
        gitignore.lines().any(|l| l == "*.env") && gitignore.lines().any(|l| l == "!example.env")
    );
}

/// Every document of every manifest under deploy/k8s.
fn manifests() -> Vec<(String, Yaml)> {
    let dir = root().join("deploy/k8s");
    let mut documents = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in docs {
            assert!(
                has_key(&doc, "kind") || has_key(&doc, "resources"),
                "{name}: a document without kind"
            );
            documents.push((name.clone(), doc));
        }
    }
    documents
}

fn kind<'a>(documents: &'a [(String, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    documents
        .iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn containers(workload: &Yaml) -> &Vec<Yaml> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .unwrap()
}

fn probe_path(container: &Yaml, probe: &str) -> (String, String) {
    let get = &container[probe]["httpGet"];
    let port = match &get["port"] {
        Yaml::Integer(n) => n.to_string(),
        other => other.as_str().unwrap().to_owned(),
    };
    (get["path"].as_str().unwrap_or_default().to_owned(), port)
}

#[test]
fn kubernetes_manifests_parse_and_wire_images_probes_secrets_and_the_sidecar() {
    let documents = manifests();
    let kustomization = &documents
        .iter()
        .find(|(name, _)| name == "kustomization.yaml")
        .unwrap()
        .1;
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for (file, _) in &documents {
        assert!(
            file == "kustomization.yaml"
                || file == "secret.example.yaml"
                || listed.contains(file.as_str()),
            "{file} is not in the kustomization"
        );
    }
    assert!(
        !listed.contains("secret.example.yaml"),
        "secrets are never applied from the repository"
    );
    let secret_keys: BTreeSet<String> = kind(&documents, "Secret", "threesigma")["stringData"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();

    // Every threesigma container: a known image, non-root, resources, secrets that exist;
    // service containers probe /readyz and /healthz on a port they declare.
    let mut images_seen = BTreeSet::new();
    for (file, doc) in &documents {
        let workload = match doc["kind"].as_str() {
            Some("Deployment" | "Job") => doc,
            _ => continue,
        };
        let pod = &workload["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{file}"
        );
        for container in containers(workload) {
            let image = container["image"].as_str().unwrap();
            let Some(component) = image.strip_prefix("threesigma/") else {
                continue; // the example application itself
            };
            let name = container["name"].as_str().unwrap();
            assert!(
                IMAGES.iter().any(|(i, _, _)| *i == component),
                "{file}/{name}: unknown image {image}"
            );
            assert!(root().join(format!("Dockerfile.{component}")).is_file());
            images_seen.insert(component.to_owned());
            assert_eq!(
                container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{file}/{name}"
            );
            assert!(
                has_key(&container["resources"]["requests"], "memory"),
                "{file}/{name}"
            );
            assert!(
                has_key(&container["resources"]["limits"], "memory"),
                "{file}/{name}"
            );
            for env in container["env"].as_vec().into_iter().flatten() {
                let reference = &env["valueFrom"]["secretKeyRef"];
                if has_key(reference, "key") {
                    assert_eq!(reference["name"].as_str(), Some("threesigma"));
                    assert!(
                        secret_keys.contains(reference["key"].as_str().unwrap()),
                        "{file}/{name}: secret key {:?}",
                        reference["key"]
                    );
                }
            }
            if component == "cli" {
                assert_eq!(container["args"][0].as_str(), Some("migrate"));
                continue;
            }
            let ports: BTreeSet<String> = container["ports"]
                .as_vec()
                .unwrap()
                .iter()
                .flat_map(|p| {
                    [
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["containerPort"].as_i64().unwrap().to_string(),
                    ]
                })
                .collect();
            for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
                let (got, port) = probe_path(container, probe);
                assert_eq!(got, path, "{file}/{name} {probe}");
                assert!(ports.contains(&port), "{file}/{name} {probe} port {port}");
            }
        }
    }
    assert_eq!(
        images_seen,
        IMAGES.iter().map(|(i, _, _)| (*i).to_owned()).collect(),
        "every image is deployed"
    );

    // The migrate Job, ingest's Service, HPA and PDB.
    let job = kind(&documents, "Job", "threesigma-migrate");
    assert_eq!(containers(job)[0]["image"].as_str(), Some("threesigma/cli"));
    let ingest = kind(&documents, "Deployment", "threesigma-ingest");
    let labels = &ingest["spec"]["template"]["metadata"]["labels"];
    let hpa = kind(&documents, "HorizontalPodAutoscaler", "threesigma-ingest");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"].as_str(),
        Some("threesigma-ingest")
    );
    assert!(hpa["spec"]["minReplicas"].as_i64().unwrap() >= 2);
    let pdb = kind(&documents, "PodDisruptionBudget", "threesigma-ingest");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    for (service, deployment) in [
        ("threesigma-ingest", ingest),
        (
            "threesigma-query",
            kind(&documents, "Deployment", "threesigma-query"),
        ),
    ] {
        let selector = &kind(&documents, "Service", service)["spec"]["selector"];
        assert_eq!(
            selector, &deployment["spec"]["template"]["metadata"]["labels"],
            "{service}"
        );
    }
    // The query API reads from a replica when the secret has one.
    let query = &containers(kind(&documents, "Deployment", "threesigma-query"))[0];
    assert!(
        query["env"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|e| e["name"].as_str() == Some("DATABASE_READ_URL")
                && e["valueFrom"]["secretKeyRef"]["optional"].as_bool() == Some(true)),
        "query: optional DATABASE_READ_URL"
    );

    // The example application: its own container plus a detector scoped to its service.
    let app = kind(&documents, "Deployment", "checkout");
    let pods = containers(app);
    assert_eq!(pods.len(), 2, "app + sidecar");
    let sidecar = pods
        .iter()
        .find(|c| c["image"].as_str() == Some("threesigma/detector"))
        .expect("detector sidecar");
    let args: Vec<&str> = sidecar["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--service", "checkout"]),
        "sidecar scoped to its service: {args:?}"
    );
    // The sidecar's flags are the real detector's: crates/detector/tests/sidecar.rs runs
    // the binary with exactly these arguments.
}

#[test]
fn operations_guide_documents_every_setting() {
    let guide = read("docs/OPERATIONS.md");
    let helps = [
        (
            "ingest",
            runtime::settings::settings_help::<ingest::settings::Settings>(),
        ),
        (
            "query",
            runtime::settings::settings_help::<query::Settings>(),
        ),
        (
            "detector",
            runtime::settings::settings_help::<detector::settings::Settings>(),
        ),
    ];
    for (service, help) in helps {
        let variables: Vec<&str> = help
            .split_whitespace()
            .filter(|w| w.starts_with("THREESIGMA__"))
            .collect();
        assert!(variables.len() > 10, "{service}: {help}");
        for variable in variables {
            assert!(
                guide.contains(variable),
                "docs/OPERATIONS.md lacks {variable} ({service})"
            );
        }
    }
    for variable in [
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "JWT_SECRET",
        "JWT_SECRET_FILE",
        "THREESIGMA_CONFIG",
        "RUST_LOG",
        "THREESIGMA_LOG_FORMAT",
    ] {
        assert!(
            guide.contains(variable),
            "docs/OPERATIONS.md lacks {variable}"
        );
    }
}

/// The built `threesigma` binary of this build profile: tests run from
/// `target/<profile>/deps/`, binaries are in `target/<profile>/`. This package has no binary
/// of its own (`CARGO_BIN_EXE_threesigma` exists only in the cli package), so the binary is
/// the one last built there: `cargo test --workspace` always builds it first.
fn built_threesigma() -> PathBuf {
    let test = std::env::current_exe().expect("the test executable's path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in target/<profile>/deps/");
    let binary = profile.join(format!("threesigma{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        let flag = match profile.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => String::new(),
            Some("release") => " --release".to_owned(),
            Some(other) => format!(" --profile {other}"),
        };
        panic!(
            "{} is not built: run `cargo build -p cli --bin threesigma{flag}` first \
             (`cargo test --workspace` and `just deploy-check` build it)",
            binary.display()
        );
    }
    binary
}

/// The runtime image (distroless `cc-debian12`) has glibc 2.36 and libgcc_s and nothing
/// else: the binaries must not link anything more (no OpenSSL, no libpq). All four link
/// the same way; the CLI, which links every crate, stands for them.
#[test]
fn binaries_link_only_what_the_distroless_runtime_has() {
    let output = Command::new("ldd")
        .arg(built_threesigma())
        .output()
        .expect("ldd (Debian's libc-bin)");
    let text = String::from_utf8_lossy(&output.stdout);
    let allowed = [
        "linux-vdso.so.1",
        "libgcc_s.so.1",
        "libm.so.6",
        "libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ];
    for library in text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        assert!(allowed.contains(&library), "links {library}:\n{text}");
    }
}

/// `kubectl kustomize` renders the base offline: the kustomization is well formed, every
/// namespaced object lands in `threesigma` and every threesigma image gets the pinned tag.
/// Skipped (with a note) where kubectl is not installed; it needs no cluster.
#[test]
fn kustomize_renders_the_base_with_pinned_images() {
    let output = match Command::new("kubectl")
        .args(["kustomize", "deploy/k8s"])
        .current_dir(root())
        .output()
    {
        Ok(output) => output,
        Err(_) => {
            eprintln!("kubectl not installed: kustomize rendering not checked");
            return;
        }
    };
    assert!(
        output.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = YamlLoader::load_from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let kinds: BTreeSet<&str> = rendered.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Namespace",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "rendered without a {kind}");
    }
    assert!(
        !kinds.contains("Secret"),
        "no secret is applied from the repository"
    );
    for doc in &rendered {
        if doc["kind"].as_str() != Some("Namespace") {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some("threesigma"),
                "{:?}",
                doc["metadata"]["name"]
            );
        }
        if matches!(doc["kind"].as_str(), Some("Deployment" | "Job")) {
            for container in containers(doc) {
                let image = container["image"].as_str().unwrap();
                if image.starts_with("threesigma/") {
                    assert!(image.ends_with(":0.1.0"), "{image} is not pinned");
                }
            }
        }
    }
}

/// Trusting a whole network's `X-Forwarded-For` lets every client in it choose its own
/// rate-limit key. The shipped examples trust single proxy addresses, never ranges.
#[test]
fn shipped_examples_trust_single_proxy_addresses_only() {
    let mut files = vec!["docker-compose.yml".to_owned()];
    for (name, _) in manifests() {
        let path = format!("deploy/k8s/{name}");
        if !files.contains(&path) {
            files.push(path);
        }
    }
    for file in files {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with('#') || !line.contains("TRUSTED_PROXIES") {
                continue;
            }
            // `KEY: value` (compose) or `- name: KEY` followed by `value: ...` (Kubernetes).
            let value = match line.split_once("TRUSTED_PROXIES:") {
                Some((_, value)) => value.trim().to_owned(),
                None => lines
                    .get(index + 1)
                    .and_then(|next| next.trim().strip_prefix("value:"))
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            };
            for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                assert!(
                    !entry.contains('/') || entry.ends_with("/32") || entry.ends_with("/128"),
                    "{file} trusts the network {entry}: list the proxies' own addresses"
                );
            }
        }
    }
}

/// The examples reach PostgreSQL over TLS they verify: compose's URL says verify-full with
/// a CA every service mounts and a server started with TLS on; every Kubernetes container
/// given DATABASE_URL mounts the CA directory the example secret's URLs name.
#[test]
fn shipped_examples_verify_the_database_certificate() {
    let compose = merged(&YamlLoader::load_from_str(&read("docker-compose.yml")).unwrap()[0]);
    let services = compose["services"].as_hash().unwrap();
    let mut with_database = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let Some(url) = service["environment"]["DATABASE_URL"].as_str() else {
            continue;
        };
        with_database += 1;
        // As compose would pass it: `${VAR:?message}` replaced by a value.
        let mut url = url.to_owned();
        while let Some(start) = url.find("${") {
            let end = start + url[start..].find('}').unwrap();
            url.replace_range(start..=end, "value");
        }
        let split = store::tls::split_url(&url).unwrap();
        assert_eq!(split.tls.mode, store::tls::SslMode::VerifyFull, "{name}");
        let Some(store::tls::RootCerts::File(ca)) = split.tls.root_certs else {
            panic!("{name}: no sslrootcert file");
        };
        let mounted = service["volumes"]
            .as_vec()
            .unwrap_or_else(|| panic!("{name}: no volumes"))
            .iter()
            .filter_map(Yaml::as_str)
            .any(|volume| volume.ends_with(&format!(":{}:ro", ca.display())));
        assert!(mounted, "{name} does not mount {}", ca.display());
    }
    assert_eq!(with_database, 5, "migrate, ingest, query, detector, cli");
    let postgres = compose["services"]["postgres"]["entrypoint"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(postgres.contains("-c ssl=on"), "{postgres}");
    assert!(
        read(".gitignore")
            .lines()
            .any(|l| l == "/deploy/compose/tls")
    );

    let documents = manifests();
    let secret = kind(&documents, "Secret", "threesigma");
    let mut ca_dirs = BTreeSet::new();
    for key in ["database-url", "database-read-url"] {
        let split = store::tls::split_url(secret["stringData"][key].as_str().unwrap()).unwrap();
        assert_eq!(split.tls.mode, store::tls::SslMode::VerifyFull, "{key}");
        let Some(store::tls::RootCerts::File(ca)) = split.tls.root_certs else {
            panic!("{key}: no sslrootcert file");
        };
        ca_dirs.insert(ca.parent().unwrap().to_owned());
    }
    let ca_dir = ca_dirs.pop_first().unwrap();
    assert!(ca_dirs.is_empty(), "one CA directory");
    let mut checked = 0;
    for (file, document) in &documents {
        let pod = &document["spec"]["template"]["spec"];
        let Some(containers) = pod["containers"].as_vec() else {
            continue;
        };
        for container in containers {
            let gets_url = container["env"].as_vec().is_some_and(|env| {
                env.iter()
                    .any(|var| var["name"].as_str() == Some("DATABASE_URL"))
            });
            if !gets_url {
                continue;
            }
            checked += 1;
            let mount = container["volumeMounts"]
                .as_vec()
                .unwrap_or_else(|| panic!("{file}: no volumeMounts"))
                .iter()
                .find(|mount| mount["mountPath"].as_str() == ca_dir.to_str())
                .unwrap_or_else(|| panic!("{file} does not mount {}", ca_dir.display()));
            let volume = pod["volumes"]
                .as_vec()
                .unwrap()
                .iter()
                .find(|volume| volume["name"] == mount["name"])
                .unwrap();
            assert_eq!(
                volume["configMap"]["name"].as_str(),
                Some("threesigma-db-ca"),
                "{file}"
            );
            assert_eq!(
                volume["configMap"]["optional"].as_bool(),
                Some(true),
                "{file}"
            );
        }
    }
    assert!(
        checked >= 5,
        "ingest, query, detector, migrate, sidecar: {checked}"
    );
}
