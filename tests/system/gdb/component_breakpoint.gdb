# gdb_component_breakpoint: two instances of gdb_target (alpha, bravo) call
# gdb_mark with a tag made of their names; the breakpoint is alpha's only.
# alpha yields first, so bravo's call passes the armed breakpoint before
# alpha's stops there; the breakpoint stays armed to the end.
kaal-break alpha gdb_mark
continue
kaal-where
# The stop loaded alpha's symbols already; this says so.
kaal-symbols alpha
bt
print/x tag
kaal-components
continue
