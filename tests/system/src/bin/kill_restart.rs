//! System test `kill_restart`: when `hello` exits, the root task kills the
//! echo service as if it had faulted (`System::kill`); its restart policy
//! restarts it, and its client still finishes every call.
#![no_std]
#![no_main]

kaal_systest::system_test!(
    "kill_restart",
    when_exits = "hello",
    kill = "echo",
    then_expect_clean_exits = ["client"]
);
