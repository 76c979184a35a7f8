//! Registers behind I/O ports: a block of ports reached through the port
//! capability of a device grant, addressed by offset and checked against
//! the block's size.

use kaal_sel4::cap::IoPort;

use crate::DriverError;

/// Something that moves bytes to and from port offsets: the kernel's I/O
/// port capability on seL4, a model in host tests.
pub trait PortAccess {
    fn in8(&self, port: u16) -> Result<u8, DriverError>;
    fn out8(&self, port: u16, value: u8) -> Result<(), DriverError>;
}

impl PortAccess for IoPort {
    fn in8(&self, port: u16) -> Result<u8, DriverError> {
        Ok(IoPort::in8(*self, port)?)
    }
    fn out8(&self, port: u16, value: u8) -> Result<(), DriverError> {
        Ok(IoPort::out8(*self, port, value)?)
    }
}

/// `len` ports from `base`.
#[derive(Clone, Copy, Debug)]
pub struct PortBlock<P> {
    io: P,
    base: u16,
    len: u16,
}

impl<P: PortAccess> PortBlock<P> {
    /// The ports `first..=last` of a grant (as `Env::io_ports` gives them).
    pub fn new(io: P, first: u16, last: u16) -> Result<Self, DriverError> {
        let len = last
            .checked_sub(first)
            .and_then(|d| d.checked_add(1))
            .ok_or(DriverError::Device("empty port range"))?;
        Ok(PortBlock {
            io,
            base: first,
            len,
        })
    }

    fn port(&self, offset: u16) -> Result<u16, DriverError> {
        if offset < self.len {
            Ok(self.base + offset)
        } else {
            Err(DriverError::OutOfRange {
                offset,
                len: self.len,
            })
        }
    }

    pub fn read(&self, offset: u16) -> Result<u8, DriverError> {
        self.io.in8(self.port(offset)?)
    }

    pub fn write(&self, offset: u16, value: u8) -> Result<(), DriverError> {
        self.io.out8(self.port(offset)?, value)
    }

    /// Sets and clears bits of a register.
    pub fn modify(&self, offset: u16, set: u8, clear: u8) -> Result<(), DriverError> {
        let v = self.read(offset)?;
        self.write(offset, (v & !clear) | set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;

    struct Model(RefCell<[u8; 16]>);

    impl PortAccess for &Model {
        fn in8(&self, port: u16) -> Result<u8, DriverError> {
            Ok(self.0.borrow()[usize::from(port - 0x3f8)])
        }
        fn out8(&self, port: u16, value: u8) -> Result<(), DriverError> {
            self.0.borrow_mut()[usize::from(port - 0x3f8)] = value;
            Ok(())
        }
    }

    #[test]
    fn offsets_are_checked_and_bits_modified() {
        let m = Model(RefCell::new([0; 16]));
        let b = PortBlock::new(&m, 0x3f8, 0x3ff).unwrap();
        b.write(4, 0b1010).unwrap();
        b.modify(4, 0b0001, 0b1000).unwrap();
        assert_eq!(b.read(4).unwrap(), 0b0011);
        assert_eq!(
            b.read(8),
            Err(DriverError::OutOfRange { offset: 8, len: 8 })
        );
        assert!(PortBlock::new(&m, 0x3ff, 0x3f8).is_err());
    }
}
