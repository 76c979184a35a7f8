//! Linux error numbers, as a system call returns them (negated in rax).

use linux_raw_sys::errno as e;

/// A Linux errno value (positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(pub u32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(pub const $name: Errno = Errno(e::$name);)*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    EOPNOTSUPP,
    ECONNREFUSED,
    ETIMEDOUT,
    ENOTSOCK,
    EPROTOTYPE,
    EAFNOSUPPORT,
    EPROTONOSUPPORT,
    ESOCKTNOSUPPORT,
    ENOPROTOOPT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETUNREACH,
    ECONNRESET,
    ECONNABORTED,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    EALREADY,
    EINPROGRESS,
    EDESTADDRREQ,
    EMSGSIZE,
    ENETRESET,
);

impl Errno {
    /// Not an error a process sees: the call is to run again from its
    /// start once the process goes on (Linux's kernel-internal
    /// `ERESTARTSYS`), as a tty read of a background job stopped by
    /// `SIGTTIN` does.
    pub const ERESTARTSYS: Errno = Errno(512);

    /// The value a system call returns for it: `-errno` as a register.
    pub fn ret(self) -> u64 {
        (-i64::from(self.0)) as u64
    }
}
