//! Draining instances from a deployment's VIPs before they stop: taken out
//! of the backend sets already, their open connections get a short time to
//! finish before the agent is told, and the rest (kept-alive connections,
//! which the instance closes itself once told to stop) until the drain
//! timeout. Shared by upgrade walks, instance operations and suspend.

use tokio::task::JoinSet;
use tokio::time::Instant;
use weft_agent::protocol::AgentApi;

use crate::controller::{DeploymentKey, Inner};

/// Drains still running, and what those that finished had to cut.
pub(crate) struct Drains {
    running: JoinSet<(String, usize)>,
    cut: Vec<String>,
    /// Connections cut, all instances together.
    total: usize,
}

impl Drains {
    fn note(&mut self, (instance, cut): (String, usize)) {
        self.total += cut;
        if cut > 0 {
            self.cut.push(format!(
                "{instance}: {cut} connection(s) cut after the drain timeout"
            ));
        }
    }

    /// Waits for the rest; what was cut, in words.
    pub(crate) async fn finish(mut self) -> Vec<String> {
        while let Some(done) = self.running.join_next().await {
            if let Ok(done) = done {
                self.note(done);
            }
        }
        self.cut
    }

    /// Waits for the rest; how many connections were cut in all.
    pub(crate) async fn finish_counted(mut self) -> usize {
        while let Some(done) = self.running.join_next().await {
            if let Ok(done) = done {
                self.note(done);
            }
        }
        self.total
    }
}

/// Drains `leaving` (deployment id, instance id) from every VIP of the
/// deployment `key` (they are out of the backend sets already). Short
/// connections get `drain_before_stop`; the rest (kept-alive connections,
/// which the instance closes itself once told to stop) may take until the
/// drain timeout while the agent stops the instances.
pub(crate) async fn drain_first<A: AgentApi>(
    inner: &Inner<A>,
    key: &DeploymentKey,
    leaving: &[(String, String)],
) -> Drains {
    let vips: Vec<weft_lb::Vip> = inner
        .lock()
        .deployments
        .get(key)
        .map(|l| l.vips.iter().flatten().map(|v| v.vip.clone()).collect())
        .unwrap_or_default();
    let mut drains = Drains {
        running: JoinSet::new(),
        cut: Vec::new(),
        total: 0,
    };
    for vip in &vips {
        for (deployment_id, instance) in leaving {
            let id = crate::vips::backend_id(deployment_id, instance);
            let (vip, timeout, instance) =
                (vip.clone(), inner.config.drain_timeout, instance.clone());
            drains
                .running
                .spawn(async move { (instance, vip.drain(&id, timeout).await.cut) });
        }
    }
    let deadline = Instant::now() + inner.config.drain_before_stop;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, drains.running.join_next()).await {
        if let Ok(done) = done {
            drains.note(done);
        }
    }
    drains
}
