mod common;

use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel;

#[test]
fn smoke_load() {
    run_isolated("smoke_load", "smoke", || {
        let Some(bytes) = common::ko_bytes("smoke_load") else {
            return;
        };
        let mut kld = common::load_rdtrace(bytes);
        println!("koharness: modules {:?}", kld.modules());
        println!("koharness: nodes {:?}", kernel::devfs::nodes());
        print!("{}", kernel::console());
        let r = kld.unload();
        println!("koharness: unload {:?}", r.map(|r| r.leaks));
        println!("koharness: malloc {:?}", kernel::malloc::stats());
    });
}
