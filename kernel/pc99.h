/*
 * KaaL's seL4 5.0.0 kernel configuration for x86_64 pc99 under QEMU (release build).
 *
 * The kernel's Makefile copies this file in as `autoconf.h`; the bindings crate reads
 * the same file, so the kernel and the generated Rust ABI always agree.
 * Differences from the tree's shipped pc99 configuration, each for QEMU TCG:
 *   - no CONFIG_SUPPORT_PCID, no CONFIG_HUGE_PAGE (TCG lacks them);
 *   - CONFIG_XAPIC instead of CONFIG_X2APIC;
 *   - no CONFIG_DEBUG_BUILD and no CONFIG_PRINTING: no debug syscalls (a thread could
 *     halt the machine with one) and no kernel printing. `cargo xtask ... --kernel debug`
 *     appends both defines and builds with DEBUG=1; do not add them here.
 * And CONFIG_FSGSBASE_MSR, not CONFIG_FSGSBASE_INST: with the instructions enabled user
 * code could `wrfsbase`, which 5.0.0 never saves (it reloads FS base only when the cached
 * value differs), so a value one thread wrote would leak into the next thread with the
 * same tls_base. The process server sets a Linux thread's FS base through
 * TCB_WriteRegisters (`tls_base`).
 */
#define AUTOCONF_INCLUDED
#define CONFIG_XAPIC 1
#define CONFIG_ARCH_X86 1
#define CONFIG_ARCH_X86_64 1
#define CONFIG_CACHE_LN_SZ 64
#define CONFIG_DOMAIN_SCHEDULE ""
#define CONFIG_FASTPATH 1
#define CONFIG_FPU_MAX_RESTORES_SINCE_SWITCH 64
#define CONFIG_FSGSBASE_MSR 1
#define CONFIG_FXSAVE 1
#define CONFIG_HAVE_FPU 1
#define CONFIG_IOMMU 1
#define CONFIG_IRQ_IOAPIC 1
#define CONFIG_KERNEL_CFLAGS ""
#define CONFIG_KERNEL_EXTRA_CPPFLAGS ""
#define CONFIG_KERNEL_STACK_BITS 12
#define CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS 230
#define CONFIG_MAX_NUM_IOAPIC 1
#define CONFIG_MAX_NUM_NODES 1
#define CONFIG_MAX_NUM_WORK_UNITS_PER_PREEMPTION 100
#define CONFIG_MAX_RMRR_ENTRIES 32
#define CONFIG_NUM_DOMAINS 1
#define CONFIG_NUM_PRIORITIES 256
#define CONFIG_OPTIMISATION_O2 1
#define CONFIG_PLAT_PC99 1
#define CONFIG_RETYPE_FAN_OUT_LIMIT 256
#define CONFIG_ROOT_CNODE_SIZE_BITS 16
#define CONFIG_SYSCALL 1
#define CONFIG_TIMER_TICK_MS 2
#define CONFIG_TIME_SLICE 1
#define CONFIG_WORD_SIZE 64
#define CONFIG_XSAVE_SIZE 512
