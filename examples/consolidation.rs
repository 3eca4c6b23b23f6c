//! Prints a fleet projection and a consolidation plan for a small fleet.
//! Run: `cargo run --example consolidation`.

use node_lifecycle::*;
use std::time::Duration;

fn main() -> Result<()> {
    let fleet = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(1_767_225_600_000))?;
    let nodes = [
        ("ccx13-a", 8192, 0.0298, vec![("mc-lobby", 1024)]),
        ("ccx23-b", 16384, 0.0595, vec![("mc-survival", 3072)]),
        ("ccx33-c", 32768, 0.1190, vec![("mc-creative", 2048)]),
        ("ccx43-d", 65536, 0.2380, vec![]),
        ("ccx53-e", 131072, 0.4760, vec![("mc-modded", 6144)]),
    ];
    fleet.register(NodeSpec::system("local-node", 0))?;
    for (id, ram, cost, containers) in &nodes {
        fleet.register(
            NodeSpec::cloud(*id, *ram)
                .hourly_cost_eur(*cost)
                .instance_type(id.split('-').next().unwrap()),
        )?;
        fleet.transition(id, LifecycleState::Initializing, "cloud_init_started")?;
        fleet.transition(id, LifecycleState::Ready, "cloud_init_completed")?;
        for (c, ram) in containers {
            fleet.add_container(id, c, *ram)?;
        }
    }
    fleet.add_container("ccx43-d", "mc-event", 1024)?;
    fleet.advance_clock(Duration::from_secs(3 * 3600))?;
    fleet.remove_container("ccx43-d", "mc-event")?; // idle since now: too recent to go
    fleet.advance_clock(Duration::from_secs(20 * 60))?;
    fleet.register(NodeSpec::cloud("ccx23-booting", 16384))?;

    let p = fleet.projection().unwrap();
    println!("Projection:");
    println!(
        "  now:     {} nodes, {} MB, {} MB used, utilisation {:.1}%",
        p.now.nodes,
        p.now.total_ram_mb,
        p.now.allocated_ram_mb + p.now.reserved_ram_mb,
        p.utilisation_now * 100.0
    );
    println!(
        "  coming:  {} nodes, {} MB (projected utilisation {:.1}%)",
        p.coming.nodes,
        p.coming.total_ram_mb,
        p.utilisation_projected * 100.0
    );
    println!(
        "  a further 256 GB of demand needs {} more ccx33 node(s)",
        p.additional_nodes_needed(262_144, 32768)?
    );

    let request = ConsolidationRequest {
        non_migratable_containers: vec!["mc-modded".into()],
        ..Default::default()
    };
    let plan = fleet.consolidation_plan(&request)?;
    println!("\nConsolidation plan (worthwhile: {}):", plan.worthwhile);
    if let Some(r) = plan.refusal {
        println!("  refused: {r:?}: {}", plan.refusal_detail);
    }
    for r in &plan.remove {
        println!(
            "  remove {:<8} ({}, {:.4} EUR/h)",
            r.node_id, r.instance_type, r.hourly_cost_eur
        );
    }
    for m in &plan.moves {
        println!(
            "  move   {:<12} {:>5} MB  {} -> {}",
            m.container_id, m.ram_mb, m.from_node, m.to_node
        );
    }
    for k in &plan.kept {
        println!("  keep   {:<12} {:?}: {}", k.node_id, k.reason, k.detail);
    }
    println!(
        "  saves {:.4} EUR/h; utilisation {:.1}% -> {:.1}%",
        plan.savings_eur_per_hour,
        plan.utilisation_before * 100.0,
        plan.utilisation_after * 100.0
    );
    Ok(())
}
