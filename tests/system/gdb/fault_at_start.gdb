# gdb_fault_at_start: null_deref (system fault_restart) reads address 0 at
# start. The kernel's page-fault entry runs on the faulting thread's
# address space, so kaal-where names the component; then a breakpoint on
# its entry point (its _start, 0x400000) stops at its restart, in it only.
hbreak handleVMFaultEvent
continue
kaal-where
delete
kaal-break null_deref *0x400000
continue
kaal-where
bt 1
delete
continue
