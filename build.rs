fn main() {
    println!("cargo:rerun-if-changed=src/native/numfmt.c");
    cc::Build::new()
        .file("src/native/numfmt.c")
        .opt_level(2)
        .compile("basalt_numfmt");
}
