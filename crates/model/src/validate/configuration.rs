//! Rules on the service configuration alone: unique role and setting
//! names, instance counts, `vmName` length, thumbprint syntax and
//! access-control rule orders.

use std::collections::HashMap;

use super::duplicates;
use crate::cscfg::*;
use crate::diagnostic::{Code, Sink};

/// Each `Role` of the configuration appears once.
pub(super) fn role_names(c: &mut Sink<'_>, cfg: &ServiceConfiguration) {
    duplicates(c, cfg.roles.iter().map(|r| &r.name), Code::E0411, "role");
}

/// The rules on one `Role` of the configuration.
pub(super) fn role_rules(c: &mut Sink<'_>, rc: &RoleConfiguration) {
    match &rc.instances {
        None => c.emit_help(
            Code::E0404,
            rc.name.span,
            format!("role `{}` has no `Instances count`", rc.name.value),
            "add `<Instances count=\"1\" />`",
        ),
        Some(n) if n.value < 1 => c.emit_help(
            Code::E0404,
            n.span,
            format!("role `{}` has {} instances", rc.name.value, n.value),
            "a role needs at least 1 instance",
        ),
        _ => {}
    }
    duplicates(
        c,
        rc.settings.iter().map(|s| &s.name),
        Code::E0411,
        "setting",
    );
    if let Some(vm) = &rc.vm_name
        && vm.value.chars().count() > 10
    {
        c.emit_help(
            Code::E0416,
            vm.span,
            format!(
                "vmName `{}` is {} characters long; the maximum is 10",
                vm.value,
                vm.value.chars().count()
            ),
            "shorten the name",
        );
    }
    for t in &rc.certificates {
        let tp = t.thumbprint.value.trim();
        if tp.len() != 40 || !tp.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.emit_help(
                Code::W0417,
                t.thumbprint.span,
                format!("thumbprint of certificate `{}` is not 40 hexadecimal digits", t.name.value),
                "write the certificate's SHA-1 thumbprint, for example `0123456789ABCDEF0123456789ABCDEF01234567`",
            );
        }
    }
}

/// Within each access control, rule orders are unique.
pub(super) fn access_control_orders(c: &mut Sink<'_>, net: &NetworkConfiguration) {
    for ac in &net.access_controls {
        let mut orders: HashMap<u64, ()> = HashMap::new();
        for r in &ac.rules {
            if orders.insert(r.order.value, ()).is_some() {
                c.emit(
                    Code::E0414,
                    r.order.span,
                    format!(
                        "access control `{}` has two rules with order {}",
                        ac.name.value, r.order.value
                    ),
                );
            }
        }
    }
}
