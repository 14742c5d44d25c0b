//! Rebuilds the crate when a migration is added: `embed_migrations!` reads the directory at
//! compile time, and cargo does not otherwise know a new one appeared.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
