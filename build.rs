//! The migrations are embedded at compile time (`embed_migrations!`), which does not tell cargo about the
//! directories it reads: without this, adding a migration directory would not rebuild the binary, and it
//! would silently lack the new migration. A directory's modification time changes when an entry is added.

fn main() {
    for dir in ["migrations", "migrations/sqlite", "migrations/postgres"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
