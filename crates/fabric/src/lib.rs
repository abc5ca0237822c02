//! weft-fabric: the fabric controller.
//!
//! The [`Controller`] owns the desired state — services → deployments (one
//! per [`Slot`]) → roles → instances `<Role>_IN_<n>` with an upgrade domain
//! and a fault domain ([`placement`]) — persisted in a
//! [`weft_store::StateStore`], and drives the actual state towards it:
//!
//! * it computes each instance's [`weft_agent::protocol::InstanceSpec`] from
//!   the service model ([`spec`]) and hands the whole set to the host's agent
//!   ([`weft_agent::protocol::AgentApi::apply`], declarative);
//! * it binds one [`weft_lb::Vip`] per input endpoint (and per instance for
//!   instance input endpoints) and keeps each VIP's backends equal to the
//!   Ready instances the agent reports, draining an instance before it is
//!   stopped;
//! * deploy, delete, upgrade ([`Controller::upgrade`], Azure's Upgrade
//!   Deployment), configuration change ([`Controller::change_configuration`]),
//!   walk and rollback are asynchronous operations with ids and a status
//!   (`InProgress` / `Succeeded` / `Failed` with the reason), like Azure's
//!   Get Operation Status; every step is one store transaction, and
//!   [`Controller::open`] resumes what a killed controller left in flight;
//! * upgrades and configuration changes walk the upgrade domains
//!   ([`upgrade`] plans them as a pure function): an upgrade domain's
//!   instances leave their VIPs, drain, get their new spec, and must be
//!   Ready for a minimum healthy time before the next domain is touched;
//! * a staging deployment runs beside production with the same instance
//!   names (instances are keyed by deployment and instance id) on the
//!   staging slot's own VIP addresses; Swap Deployment ([`swap`],
//!   [`Controller::swap`]) exchanges the slots in one store transaction and
//!   switches each VIP's backends at once;
//! * Reboot, Reimage and Delete Role Instances ([`Controller::reboot`],
//!   [`Controller::reimage`], [`Controller::delete_instances`]) and Update
//!   Deployment Status ([`Controller::update_status`]: suspend, start)
//!   commit their decision with the operation and drain before the agent
//!   stops anything;
//! * the configuration text a deployment runs is kept with it
//!   ([`configuration`], [`Controller::configuration`]);
//! * what it did and why is kept per deployment (by id, following it through
//!   swaps) as an event history ([`events`], [`Controller::events`]).
//!
//! Views ([`view`]) are what the REST API returns as JSON.

mod config;
pub mod configuration;
mod controller;
mod deployment_status;
mod drain;
mod error;
pub mod events;
mod instance_ops;
mod ops;
pub mod placement;
mod record;
pub mod spec;
pub mod swap;
pub mod upgrade;
mod upgrade_ops;
mod upgrade_walk;
pub mod view;
mod vips;

pub use config::{
    ChangeConfigurationRequest, DeployRequest, FabricConfig, OperationId, Slot, UpgradeRequest,
};
pub use controller::Controller;
pub use error::FabricError;
pub use weft_agent::protocol::{LogPage, LogQuery};
