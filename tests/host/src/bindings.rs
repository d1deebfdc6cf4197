//! Host-side bindings for the two Spin interfaces the test host implements,
//! `fermyon:spin/key-value@2.0.0` and `fermyon:spin/variables@2.0.0`, generated from the WIT
//! copied out of spin-sdk 5.2 into `tests/host/wit/spin.wit`. The implementations live in
//! `kv.rs` and `variables.rs`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "fermyon:spin/host-imports",
    imports: { default: async },
    with: {
        "fermyon:spin/key-value.store": crate::kv::KvStore,
    },
});
