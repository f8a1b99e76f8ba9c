// New migration files must rebuild the crate that embeds them (`sqlx::migrate!`).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
