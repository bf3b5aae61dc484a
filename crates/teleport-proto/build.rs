//! Compiles the hand-written `.proto` subset with protox (pure Rust, no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/authservice.proto",
        "proto/types.proto",
        "proto/wrappers.proto",
        "proto/teleport/header/v1/header.proto",
        "proto/teleport/trait/v1/trait.proto",
        "proto/teleport/userloginstate/v1/userloginstate.proto",
        "proto/teleport/accessmonitoringrules/v1/access_monitoring_rules.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        // The server stubs are what the test harness's fake Auth Service implements.
        .build_server(true)
        // Small messages: see src/codec.rs.
        .codec_path("crate::codec::CompactCodec")
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
