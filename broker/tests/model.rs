//! The broker's allocation logic over the host model of seL4: property tests
//! of random allocate/free sequences, and the error paths.

use kaal_broker::device::{DeviceKey, DeviceSpec, Holder, IrqDestination};
use kaal_broker::kernel::{Access, Kernel, ObjSpec, ObjectType};
use kaal_broker::model::{IrqBound, Model, ModelCap, ROOT_VSPACE};
use kaal_broker::untyped::UntypedRoot;
use kaal_broker::{Broker, BrokerConfig, BrokerError, COMPONENT_VSPACE_WINDOW, IRQ_BADGE};
use kaal_sel4::cap::{Cap, Notification};
use proptest::prelude::*;
use std::collections::BTreeSet;

const SLOT_BITS: u8 = 14;

fn roots() -> Vec<UntypedRoot> {
    vec![
        UntypedRoot {
            cptr: 10,
            paddr: 0x10_0000,
            bits: 20,
            device: false,
        },
        UntypedRoot {
            cptr: 11,
            paddr: 0x20_0000,
            bits: 21,
            device: false,
        },
        UntypedRoot {
            cptr: 12,
            paddr: 0x40_0000,
            bits: 16,
            device: false,
        },
        UntypedRoot {
            cptr: 13,
            paddr: 0xfe00_0000,
            bits: 24,
            device: true,
        },
    ]
}

fn broker() -> Broker<Model> {
    let r = roots();
    let cfg = BrokerConfig {
        free_slots: 100..(1 << SLOT_BITS),
        untypeds: r.clone(),
        vspace: ROOT_VSPACE,
        vspace_window: 0x2000_0000..0x4000_0000,
    };
    Broker::new(Model::new(SLOT_BITS, &r), cfg)
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(ObjSpec, u64),
    Free(usize),
    Memory(u64),
    FreeMemory(usize),
    /// An untyped block handed out raw (a component's budget), from which
    /// its holder makes objects of its own.
    Budget(u8),
    Coalesce,
}

/// Slots below the broker's range, playing a component's CSpace: what a
/// budget's holder retypes goes there.
const OUTSIDE: std::ops::Range<u64> = 14..100;

/// What a budget's holder does with its untyped block `ut` of 2^`bits`
/// bytes: an endpoint, and a child untyped with a frame in it, in slots
/// taken from `outside`. Returns the slots used (empty when none are left).
fn use_budget(b: &mut Broker<Model>, ut: u64, bits: u8, outside: &mut Vec<u64>) -> Vec<u64> {
    if outside.len() < 3 || bits < 13 {
        return Vec::new();
    }
    let slots: Vec<u64> = outside.split_off(outside.len() - 3);
    let &[ep, child, frame] = slots.as_slice() else {
        unreachable!("three slots were taken")
    };
    let k = b.kernel();
    k.retype(ut, ObjSpec::of(ObjectType::Endpoint), ep, 1)
        .expect("the model retypes from a budget");
    k.retype(ut, ObjSpec::untyped(bits - 1), child, 1)
        .expect("the model retypes from a budget");
    k.retype(child, ObjSpec::of(ObjectType::Frame4K), frame, 1)
        .expect("the model retypes from a budget");
    slots
}

fn spec() -> impl Strategy<Value = ObjSpec> {
    prop_oneof![
        Just(ObjSpec::of(ObjectType::Endpoint)),
        Just(ObjSpec::of(ObjectType::Notification)),
        Just(ObjSpec::of(ObjectType::Tcb)),
        Just(ObjSpec::of(ObjectType::Frame4K)),
        Just(ObjSpec::of(ObjectType::PageTable)),
        (1u8..6).prop_map(ObjSpec::cnode),
        (4u8..19).prop_map(ObjSpec::untyped),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (spec(), prop_oneof![Just(1u64), Just(2), Just(8)]).prop_map(|(s, n)| Op::Alloc(s, n)),
        3 => any::<usize>().prop_map(Op::Free),
        1 => (1u64..40_000).prop_map(Op::Memory),
        1 => any::<usize>().prop_map(Op::FreeMemory),
        2 => (12u8..19).prop_map(Op::Budget),
        1 => Just(Op::Coalesce),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_allocation_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut b = broker();
        let total = b.total_ram_bytes();
        let mut objs: Vec<(u64, ObjSpec, u64)> = Vec::new();
        let mut mems = Vec::new();
        let mut outside: Vec<u64> = OUTSIDE.collect();
        // Each budget's slots of the holder's objects.
        let mut made: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for op in ops {
            match op {
                Op::Alloc(s, n) => match b.alloc_objects(s, n) {
                    Ok(first) => {
                        // Every object aligned to its size.
                        let p = b.object_paddr(first).unwrap();
                        prop_assert_eq!(p % (1u64 << s.mem_bits()), 0);
                        for i in 0..n {
                            match b.kernel().cap(first + i) {
                                Some(ModelCap::Object { spec, .. }) => prop_assert_eq!(*spec, s),
                                Some(ModelCap::Untyped { bits, .. }) => prop_assert_eq!(*bits, s.size_bits),
                                other => prop_assert!(false, "slot {} holds {:?}", first + i, other),
                            }
                        }
                        objs.push((first, s, n));
                    }
                    Err(BrokerError::OutOfMemory { .. }) | Err(BrokerError::OutOfSlots) => {}
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                },
                Op::Free(i) if !objs.is_empty() => {
                    let (first, _, _) = objs.remove(i % objs.len());
                    b.free(first).unwrap();
                    prop_assert!(b.kernel().cap(first).is_none(), "freed object's cap is gone");
                    // A budget's revoke took whatever its holder made.
                    for slot in made.remove(&first).unwrap_or_default() {
                        prop_assert!(b.kernel().cap(slot).is_none(), "slot {} survived its budget", slot);
                        outside.push(slot);
                    }
                }
                Op::Budget(bits) => match b.alloc_untyped(bits) {
                    Ok((ut, paddr)) => {
                        prop_assert_eq!(paddr % (1u64 << bits), 0);
                        let used = use_budget(&mut b, ut, bits, &mut outside);
                        made.insert(ut, used);
                        objs.push((ut, ObjSpec::untyped(bits), 1));
                    }
                    Err(BrokerError::OutOfMemory { .. }) | Err(BrokerError::OutOfSlots) => {}
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                },
                Op::Memory(size) => match b.allocate_memory(size) {
                    Ok(m) => mems.push(m),
                    Err(BrokerError::OutOfMemory { .. }) | Err(BrokerError::OutOfSlots) => {}
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                },
                Op::FreeMemory(i) if !mems.is_empty() => {
                    let m = mems.remove(i % mems.len());
                    b.free_memory(m).unwrap();
                }
                Op::Coalesce => b.coalesce().unwrap(),
                _ => {}
            }
            // No two live objects overlap; everything lies in its parent.
            if let Err(e) = b.kernel().check_invariants() { prop_assert!(false, "{}", e); }
            // No slot is handed out twice.
            let mut seen = BTreeSet::new();
            for (first, _, n) in &objs {
                for i in 0..*n { prop_assert!(seen.insert(first + i), "slot {} twice", first + i); }
            }
            prop_assert!(b.free_ram_bytes() <= total);
            // Every slot of the broker's range is either free or holds a
            // capability: none leaks, none is both.
            let used = b.kernel().occupied_in(100..(1 << SLOT_BITS)) as u64;
            prop_assert_eq!(b.free_slots() + used, (1u64 << SLOT_BITS) - 100);
        }
        // Freeing everything gives all the memory back.
        for (first, _, _) in objs { b.free(first).unwrap(); }
        prop_assert_eq!(b.kernel().occupied_in(OUTSIDE), 0, "a budget's objects outlived it");
        for m in mems { b.free_memory(m).unwrap(); }
        prop_assert_eq!(b.free_ram_bytes(), total - paging_bytes(&mut b));
        // ... whole: the largest block is allocatable again, unless a kept
        // paging structure sits in the one 2 MiB root.
        let two_mib = 0x20_0000..0x40_0000;
        let pinned = b.live_objects().any(|(_, paddr, _, _)| two_mib.contains(&paddr));
        let big = b.alloc_object(ObjSpec::untyped(21));
        prop_assert!(big.is_ok() || pinned, "2 MiB block after freeing everything: {:?}", big);
        let used = b.kernel().occupied_in(100..(1 << SLOT_BITS)) as u64;
        prop_assert_eq!(b.free_slots() + used, (1u64 << SLOT_BITS) - 100);
    }
}

/// Paging structures the broker made for mappings stay (it keeps them).
fn paging_bytes(b: &mut Broker<Model>) -> u64 {
    b.live_objects().map(|(_, _, bits, _)| 1u64 << bits).sum()
}

#[test]
fn exhaustion_is_an_error_and_reversible() {
    let mut b = broker();
    let mut got = Vec::new();
    loop {
        match b.alloc::<kaal_sel4::cap::Frame>() {
            Ok(f) => got.push(f),
            Err(BrokerError::OutOfMemory { bits: 12 }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let n = got.len();
    assert_eq!(n as u64 * 4096, b.total_ram_bytes());
    for f in got {
        b.free(kaal_sel4::cap::Cap::cptr(f)).unwrap();
    }
    assert_eq!(b.free_ram_bytes(), b.total_ram_bytes());
    for _ in 0..n {
        b.alloc::<kaal_sel4::cap::Frame>().unwrap();
    }
    assert!(matches!(
        b.alloc::<kaal_sel4::cap::Frame>(),
        Err(BrokerError::OutOfMemory { .. })
    ));
}

#[test]
fn slots_run_out_with_an_error() {
    let r = roots();
    let cfg = BrokerConfig {
        free_slots: 100..120,
        untypeds: r.clone(),
        vspace: ROOT_VSPACE,
        vspace_window: 0..0,
    };
    let mut b = Broker::new(Model::new(SLOT_BITS, &r), cfg);
    let mut err = None;
    for _ in 0..40 {
        if let Err(e) = b.alloc::<kaal_sel4::cap::Endpoint>() {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(BrokerError::OutOfSlots));
}

#[test]
fn freeing_twice_or_unknown_is_refused() {
    let mut b = broker();
    let ep = b.alloc_object(ObjSpec::of(ObjectType::Endpoint)).unwrap();
    b.free(ep).unwrap();
    assert_eq!(b.free(ep), Err(BrokerError::UnknownObject(ep)));
    assert_eq!(b.free(5), Err(BrokerError::UnknownObject(5)));
    assert!(matches!(
        b.alloc_objects(ObjSpec::of(ObjectType::Endpoint), 3),
        Err(BrokerError::InvalidRequest(_))
    ));
}

#[test]
fn dma_is_contiguous_aligned_and_returned() {
    let mut b = broker();
    let before = b.free_ram_bytes();
    let a = b.allocate_dma(3 * 4096).unwrap();
    let c = b.allocate_dma(4096).unwrap();
    assert_eq!(a.size, 4 * 4096);
    assert_eq!(a.paddr % a.size, 0);
    assert!(a.paddr + a.size <= c.paddr || c.paddr + c.size <= a.paddr);
    b.free_dma(a).unwrap();
    b.free_dma(c).unwrap();
    assert_eq!(b.free_dma(c), Err(BrokerError::UnknownObject(c.vaddr)));
    // Only the paging structures made for the mappings remain.
    assert_eq!(b.free_ram_bytes() + paging_bytes(&mut b), before);
}

#[test]
fn devices_are_claimed_once_and_cached() {
    let mut b = broker();
    b.discover_devices().unwrap();
    let com1 = DeviceSpec::Serial { port: 0 };
    let first = b.request_device(Holder(1), com1).unwrap();
    assert_eq!(first.ioports[0].first, 0x3f8);
    assert_eq!(first.ioports[0].last, 0x3ff);
    assert_eq!(first.irq.map(|i| i.line), Some(4));
    // Without a destination, to a notification of the broker's own.
    let irq = first.irq.unwrap();
    assert_eq!(
        b.kernel().irq_binding(irq.handler.cptr()),
        Some(IrqBound {
            notification: irq.notification.cptr(),
            badge: IRQ_BADGE,
            binds: 1
        })
    );
    let ops = b.kernel().ops;
    assert_eq!(b.request_device(Holder(1), com1).unwrap(), first, "cached");
    assert_eq!(b.kernel().ops, ops, "a cached request makes no kernel call");
    assert_eq!(
        b.request_device(Holder(2), com1),
        Err(BrokerError::AlreadyClaimed {
            device: com1,
            holder: Holder(1)
        })
    );
    assert_eq!(
        b.release_device(Holder(2), com1),
        Err(BrokerError::NotHeld(com1))
    );
    // COM3 shares COM1's IRQ 4, and seL4 gives a line one handler.
    let com3 = DeviceSpec::Serial { port: 2 };
    assert_eq!(
        b.request_device(Holder(2), com3),
        Err(BrokerError::IrqLineShared {
            line: 4,
            with: DeviceKey::Serial(0)
        })
    );
    b.release_device(Holder(1), com1).unwrap();
    let again = b.request_device(Holder(2), com1).unwrap();
    assert_eq!(again.irq.map(|i| i.line), Some(4));
    assert_eq!(
        b.request_device(
            Holder(1),
            DeviceSpec::Pci {
                vendor: 1,
                device: 2
            }
        ),
        Err(BrokerError::NoSuchDevice(DeviceSpec::Pci {
            vendor: 1,
            device: 2
        }))
    );
}

#[test]
fn a_device_interrupt_is_bound_once_to_the_holders_notification() {
    let mut b = broker();
    b.discover_devices().unwrap();
    let own: Notification = b.alloc().unwrap();
    let to = IrqDestination {
        notification: own,
        badge: 1 << 21,
    };
    let com1 = DeviceSpec::Serial { port: 0 };
    let ram = b.free_ram_bytes();
    let bundle = b.request_device_to(Holder(1), com1, to).unwrap();
    let irq = bundle.irq.unwrap();
    assert_eq!((irq.notification, irq.badge), (own, 1 << 21));
    let bound = |b: &mut Broker<Model>| b.kernel().irq_binding(irq.handler.cptr());
    assert_eq!(
        bound(&mut b),
        Some(IrqBound {
            notification: own.cptr(),
            badge: 1 << 21,
            binds: 1
        }),
        "bound once, at the claim, to the destination given"
    );
    assert_eq!(b.free_ram_bytes(), ram, "no notification of the broker's");

    // The same destination again: the cached bundle; another: refused.
    let ops = b.kernel().ops;
    assert_eq!(b.request_device_to(Holder(1), com1, to), Ok(bundle.clone()));
    assert_eq!(b.request_device(Holder(1), com1), Ok(bundle));
    assert_eq!(b.kernel().ops, ops);
    let other = IrqDestination {
        badge: 1 << 22,
        ..to
    };
    assert_eq!(
        b.request_device_to(Holder(1), com1, other),
        Err(BrokerError::IrqBoundElsewhere(com1))
    );
    assert_eq!(bound(&mut b).map(|b| b.binds), Some(1));

    // Release: the handler and its binding go; the notification stays the
    // holder's, and takes the next claim.
    b.release_device(Holder(1), com1).unwrap();
    assert_eq!(bound(&mut b), None);
    assert!(matches!(
        b.kernel().cap(own.cptr()),
        Some(ModelCap::Object { .. })
    ));
    let again = b.request_device_to(Holder(2), com1, other).unwrap();
    assert_eq!(again.irq.map(|i| i.badge), Some(1 << 22));

    // Badge 0 cannot be told from "not signalled".
    let pit = DeviceSpec::Pit;
    let zero = IrqDestination { badge: 0, ..to };
    assert_eq!(
        b.request_device_to(Holder(3), pit, zero),
        Err(BrokerError::InvalidRequest("interrupt badge 0"))
    );
    assert!(b.request_device_to(Holder(3), pit, to).is_ok());
}

#[test]
fn the_pit_comes_with_its_ports_and_rerouted_edge_interrupt() {
    let mut b = broker();
    b.discover_devices().unwrap();
    let pit = b.request_device(Holder(1), DeviceSpec::Pit).unwrap();
    let ports: Vec<_> = pit.ioports.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(ports, [(0x40, 0x43)]);
    assert!(pit.mmio.is_empty() && pit.dma.is_none());
    let irq = pit.irq.expect("the PIT has an interrupt");
    assert_eq!(irq.line, 2, "ISA IRQ 0 arrives on IOAPIC pin 2");
    assert!(matches!(
        b.kernel().cap(kaal_sel4::cap::Cap::cptr(irq.handler)),
        Some(ModelCap::Irq {
            pin: 2,
            level_triggered: false
        })
    ));
    // Holding the PIT leaves COM1 (IRQ 4) to another holder.
    b.request_device(Holder(2), DeviceSpec::Serial { port: 0 })
        .unwrap();
    b.release_device(Holder(1), DeviceSpec::Pit).unwrap();
    assert!(b.request_device(Holder(3), DeviceSpec::Pit).is_ok());
}

/// The trigger mode the root task grants (`DeviceKey::irq_level_triggered`)
/// is the one the broker programmed the line with.
#[test]
fn granted_trigger_modes_are_the_programmed_ones() {
    let mut b = broker();
    b.discover_devices().unwrap();
    for (holder, id) in [(1, DeviceSpec::Pit), (2, DeviceSpec::Serial { port: 1 })] {
        let bundle = b.request_device(Holder(holder), id).unwrap();
        let irq = bundle.irq.expect("an interrupt");
        match b.kernel().cap(kaal_sel4::cap::Cap::cptr(irq.handler)) {
            Some(ModelCap::Irq {
                level_triggered, ..
            }) => {
                // ISA lines are edge triggered: programmed so, and told so.
                assert!(!*level_triggered, "{id:?} programmed level triggered");
                assert!(!bundle.key.irq_level_triggered());
            }
            other => panic!("{id:?}: handler is {other:?}"),
        }
    }
    assert!(!DeviceKey::Pit.irq_level_triggered());
    assert!(!DeviceKey::Serial(0).irq_level_triggered());
    // The model has no PCI bus; INTx is level triggered.
    let at = kaal_broker::pci::Bdf {
        bus: 0,
        dev: 3,
        func: 0,
    };
    assert!(DeviceKey::Pci(at).irq_level_triggered());
}

#[test]
fn device_memory_only_for_the_range_asked() {
    let mut b = broker();
    let before = b.free_ram_bytes();
    // RAM is never served as device memory, and device memory never as RAM.
    let ram: Vec<_> = (0..4)
        .map(|_| b.alloc_object(ObjSpec::of(ObjectType::Frame4K)).unwrap())
        .collect();
    for f in &ram {
        assert!(b.object_paddr(*f).unwrap() < 0xfe00_0000);
    }
    assert_eq!(b.free_ram_bytes(), before - 4 * 4096);
}

#[test]
fn new_address_spaces_take_mappings_with_their_own_tables() {
    use kaal_broker::kernel::Access;
    use kaal_sel4::cap::{Cap, Frame, Pml4};
    let mut b = broker();
    let vs = b.new_vspace().unwrap();
    let text = b.alloc::<Frame>().unwrap();
    let data = b.alloc::<Frame>().unwrap();
    let far = b.alloc::<Frame>().unwrap();
    b.map_into(vs, text, 0x40_0000, Access::ReadOnly).unwrap();
    b.map_into(vs, data, 0x40_1000, Access::ReadWrite).unwrap();
    b.map_into(vs, far, 0x7fff_ffff_e000, Access::ReadWrite)
        .unwrap();
    let maps: Vec<_> = b.kernel().mappings(vs.cptr()).collect();
    assert_eq!(
        maps,
        [
            (0x40_0000, text.cptr(), Access::ReadOnly),
            (0x40_1000, data.cptr(), Access::ReadWrite),
            (0x7fff_ffff_e000, far.cptr(), Access::ReadWrite)
        ]
    );
    // The same address in another space is another mapping.
    let other = b.alloc::<Frame>().unwrap();
    assert!(
        b.map_into(vs, other, 0x40_0000, Access::ReadOnly).is_err(),
        "address taken in this space"
    );
    let vs2 = b.new_vspace().unwrap();
    b.map_into(vs2, other, 0x40_0000, Access::ReadOnly).unwrap();
    // A PML4 without an ASID takes no mapping.
    let bare: Pml4 = b.alloc().unwrap();
    let f = b.alloc::<Frame>().unwrap();
    assert!(matches!(
        b.map_into(bare, f, 0x40_0000, Access::ReadOnly),
        Err(BrokerError::Kernel {
            error: kaal_sel4::Error::InvalidCapability,
            ..
        })
    ));
    b.kernel().check_invariants().unwrap();
}

#[test]
fn memory_given_and_shared_between_spaces_comes_back_whole() {
    use kaal_broker::kernel::Access;
    use kaal_sel4::cap::Cap;
    let mut b = broker();
    // Warm up the root window's own tables, which the broker keeps.
    let warm = b.allocate_memory(4096).unwrap();
    b.free_memory(warm).unwrap();
    let (ram, slots) = (b.free_ram_bytes(), b.free_slots());
    for _ in 0..3 {
        let a = b.new_vspace().unwrap();
        let c = b.new_vspace().unwrap();
        let text = b.allocate_memory(3 * 4096).unwrap();
        let text = b.give_memory(text, a, 0x40_0000, Access::ReadOnly).unwrap();
        assert_eq!(text.vaddr, 0x40_0000);
        let maps: Vec<_> = b.kernel().mappings(a.cptr()).map(|m| m.0).collect();
        assert_eq!(maps, [0x40_0000, 0x40_1000, 0x40_2000]);
        assert!(
            b.give_memory(text.clone(), c, 0, Access::ReadOnly).is_err(),
            "memory cannot be given twice"
        );
        let ring = b.allocate_memory(2 * 4096).unwrap();
        let ca = b
            .share_memory(&ring, a, 0x4000_0000, Access::ReadWrite)
            .unwrap();
        let cc = b
            .share_memory(&ring, c, 0x4000_0000, Access::ReadWrite)
            .unwrap();
        assert_eq!(b.kernel().mappings(c.cptr()).count(), 2);
        b.unshare(ca).unwrap();
        assert_eq!(b.kernel().mappings(a.cptr()).count(), 3);
        b.free_memory(text).unwrap();
        b.free_memory(ring).unwrap();
        // The original is gone; its copies went with it, their slots remain.
        b.unshare(cc).unwrap();
        b.free_vspace(a).unwrap();
        b.free_vspace(c).unwrap();
        b.coalesce().unwrap();
        assert_eq!((b.free_ram_bytes(), b.free_slots()), (ram, slots));
        b.kernel().check_invariants().unwrap();
    }
}

#[test]
fn a_budget_goes_back_whole_with_everything_made_from_it() {
    let mut b = broker();
    let total = b.total_ram_bytes();
    let slots = b.free_slots();
    let (ut, paddr) = b.alloc_untyped(16).unwrap();
    assert_eq!(paddr % (1 << 16), 0);
    assert!(matches!(
        b.kernel().cap(ut),
        Some(ModelCap::Untyped { bits: 16, .. })
    ));
    assert_eq!(b.free_ram_bytes(), total - (1 << 16));
    let mut outside: Vec<u64> = OUTSIDE.collect();
    let used = use_budget(&mut b, ut, 16, &mut outside);
    assert_eq!(used.len(), 3);
    b.free(ut).unwrap();
    for s in used {
        assert!(b.kernel().cap(s).is_none(), "slot {s} survived its budget");
    }
    assert!(b.kernel().cap(ut).is_none());
    b.coalesce().unwrap();
    assert_eq!((b.free_ram_bytes(), b.free_slots()), (total, slots));
    assert_eq!(b.free(ut), Err(BrokerError::UnknownObject(ut)));
    // Below the kernel's minimum it is the minimum; above its maximum an error.
    let (small, _) = b.alloc_untyped(1).unwrap();
    assert!(matches!(
        b.kernel().cap(small),
        Some(ModelCap::Untyped { bits: 4, .. })
    ));
    assert!(matches!(
        b.alloc_untyped(60),
        Err(BrokerError::InvalidRequest(_))
    ));
}

/// A broker over a component's budget: the root broker hands out blocks,
/// a second broker (the component's) runs over them alone; the component's
/// objects and mappings all come from the budget, and freeing them gives
/// the budget back whole.
#[test]
fn a_component_broker_runs_over_its_budget_alone() {
    let mut root = broker();
    let mut blocks = Vec::new();
    for bits in [18u8, 17] {
        let (cptr, paddr) = root.alloc_untyped(bits).unwrap();
        blocks.push(UntypedRoot {
            cptr,
            paddr,
            bits,
            device: false,
        });
    }
    // The component's kernel: its CNode holds copies of the blocks (here:
    // the same caps, in a model of their own) and its free slots.
    let model = Model::new(SLOT_BITS, &blocks);
    let free = 200..4000;
    let cfg = BrokerConfig::for_component(
        kaal_sel4::cap::Pml4::from_cptr(ROOT_VSPACE),
        free.clone(),
        blocks.iter().copied(),
    );
    assert_eq!(cfg.vspace_window, COMPONENT_VSPACE_WINDOW);
    let mut b = Broker::new(model, cfg);
    let budget = (1 << 18) + (1 << 17);
    assert_eq!(b.total_ram_bytes(), budget);
    let mem = b.allocate_memory(3 * 4096).unwrap();
    assert!(COMPONENT_VSPACE_WINDOW.contains(&mem.vaddr));
    let before = (b.free_ram_bytes(), b.free_slots());
    for _ in 0..3 {
        let vs = b.new_vspace().unwrap();
        let code = b.allocate_memory(4096).unwrap();
        let code = b
            .give_memory(code, vs, 0x40_0000, Access::ReadOnly)
            .unwrap();
        let cnode = b.alloc_cnode(2).unwrap();
        let tcb = b.alloc::<kaal_sel4::cap::Tcb>().unwrap();
        let ep = b.alloc::<kaal_sel4::cap::Endpoint>().unwrap();
        for c in [tcb.cptr(), cnode.cptr(), ep.cptr()] {
            b.free(c).unwrap();
        }
        b.free_memory(code).unwrap();
        b.free_vspace(vs).unwrap();
        b.coalesce().unwrap();
        assert_eq!((b.free_ram_bytes(), b.free_slots()), before);
    }
    b.free_memory(mem).unwrap();
    // Nothing of the component's came from outside its budget.
    assert!(b.live_objects().all(|(_, p, _, _)| blocks
        .iter()
        .any(|u| (u.paddr..u.paddr + (1 << u.bits)).contains(&p))));
    let used = b.kernel().occupied_in(free.clone()) as u64;
    assert_eq!(b.free_slots() + used, free.end - free.start);
    for u in blocks {
        root.free(u.cptr).unwrap();
    }
}

/// Copy-on-write's kernel steps: a page shared into two spaces has its
/// access changed in one (`remap`) and not in the other; a space freed
/// first leaves its copies to be deleted without unmapping, and every
/// slot and byte comes back.
#[test]
fn remapped_copies_change_access_and_dropped_copies_come_back() {
    use kaal_broker::kernel::{Access, Cache};
    use kaal_sel4::cap::Cap;
    let mut b = broker();
    let warm = b.allocate_memory(4096).unwrap();
    b.free_memory(warm).unwrap();
    let (ram, slots) = (b.free_ram_bytes(), b.free_slots());
    let a = b.new_vspace().unwrap();
    let c = b.new_vspace().unwrap();
    let page = b.allocate_memory(4096).unwrap();
    let frame = page.frames().next().unwrap();
    let ca = b
        .share_frames(&[frame], a, 0x40_0000, Access::ReadWrite, Cache::WriteBack)
        .unwrap();
    let cc = b
        .share_frames(&[frame], c, 0x40_0000, Access::ReadOnly, Cache::WriteBack)
        .unwrap();
    b.remap(ca[0], a, Access::ReadOnly).unwrap();
    let access = |b: &mut kaal_broker::Broker<kaal_broker::model::Model>, vs: u64| {
        b.kernel().mappings(vs).map(|m| m.2).collect::<Vec<_>>()
    };
    assert_eq!(access(&mut b, a.cptr()), [Access::ReadOnly]);
    b.remap(cc[0], c, Access::ReadWrite).unwrap();
    assert_eq!(access(&mut b, c.cptr()), [Access::ReadWrite]);
    assert_eq!(
        access(&mut b, a.cptr()),
        [Access::ReadOnly],
        "the other copy kept its access"
    );
    assert!(
        b.remap(cc[0], a, Access::ReadWrite).is_err(),
        "a copy is remapped only in the space it is mapped in"
    );
    b.free_vspace(a).unwrap();
    b.drop_copies(ca).unwrap();
    b.unshare(cc).unwrap();
    b.free_vspace(c).unwrap();
    b.free_memory(page).unwrap();
    b.coalesce().unwrap();
    assert_eq!((b.free_ram_bytes(), b.free_slots()), (ram, slots));
    b.kernel().check_invariants().unwrap();
}
