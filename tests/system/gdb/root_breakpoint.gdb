# gdb_root_breakpoint: a breakpoint in the root task's spawn path.
kaal-break root System>::spawn
continue
kaal-where
bt
delete
continue
