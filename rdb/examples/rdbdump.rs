//! Print every item of a dump: `cargo run -p basalt-rdb --example rdbdump -- FILE`.
use basalt_rdb::{DecodeOptions, MappedFile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: rdbdump FILE")?;
    let file = MappedFile::open(&path)?;
    let mut reader = file.reader(DecodeOptions {
        skip_empty_keys: false,
        ..Default::default()
    })?;
    println!("format: {}", reader.format());
    for item in reader.by_ref() {
        let s = format!("{:?}", item?);
        println!(
            "{}",
            if s.len() > 400 {
                format!("{}...", &s[..s.floor_char_boundary(400)])
            } else {
                s
            }
        );
    }
    println!("checksum: {:?}", reader.checksum());
    Ok(())
}
