fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // The PostgreSQL copy of the integration suite is built where PostgreSQL can be started (the
    // Debian binaries) or reached (`KAI_TEST_POSTGRES_URL`).
    println!("cargo::rustc-check-cfg=cfg(kai_postgres)");
    println!("cargo:rerun-if-changed=/usr/lib/postgresql");
    println!("cargo:rerun-if-env-changed=KAI_TEST_POSTGRES_URL");
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().any(|v| v.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    if installed || std::env::var_os("KAI_TEST_POSTGRES_URL").is_some() {
        println!("cargo:rustc-cfg=kai_postgres");
    }
}
