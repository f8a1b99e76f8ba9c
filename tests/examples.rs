//! The inputs in `examples/`, run through `cep layer` on the embedded default as a user
//! would: layer 1's search, then the seed API document's shapes for layers 2 to 9.

use crate::helpers::*;

fn layer(dir: &TempDir, name: &str, input: &str) -> std::process::Output {
    let input = format!("{}/examples/{input}", env!("CARGO_MANIFEST_DIR"));
    cep_embedded(dir, &["layer", name, "--input", &input])
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_example_runs_and_the_seed_shapes_give_the_seed_fields() {
    let dir = TempDir::new();
    let found = json(&layer(&dir, "prospecting", "prospecting.json"));
    // The bundled directory's 24 Miami dentists, those not qualified left out.
    assert_eq!(found["total_found"], 24);
    assert_eq!(found["prospects"].as_array().unwrap().len(), 17);
    let ids: Vec<&str> = found["prospects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();

    // Layer 2 on two of layer 1's prospects, email and LinkedIn only.
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/examples/pitch_generation.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    for p in example["prospects"].as_array().unwrap() {
        assert!(
            ids.contains(&p["id"].as_str().unwrap()),
            "{p} is one of layer 1's"
        );
    }
    let pitched = json(&layer(&dir, "2", "pitch_generation.json"));
    assert_eq!(pitched["pitches_generated"], 4);
    let channels: Vec<&str> = pitched["pitches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "linkedin", "email", "linkedin"]);
    assert!(pitched["avg_confidence"].as_f64().unwrap() > 0.5);

    // Layer 4 on the seed's webhook payload: a meeting, attributed to nobody (its
    // tracking is unsigned), and the invitation is Calendly's, so unknown here.
    let booked = json(&layer(&dir, "booking", "booking.json"));
    assert_eq!(booked["webhook_processed"], true);
    assert_eq!(booked["meeting_created"], true);
    assert_eq!(booked["calendar_invite_sent"], serde_json::Value::Null);
    assert_eq!(booked["prospect_id"], serde_json::Value::Null);
    assert_eq!(booked["meeting_type"], "discovery");

    // Layer 3 on layer 2's pitches: each prospect's sequence, its first step recorded
    // (a dry run sends nothing) or, outside the send window, queued for when it opens.
    let reached = json(&layer(&dir, "outreach", "outreach.json"));
    assert_eq!(reached["messages_sent"], 0, "{reached}");
    assert_eq!(reached["prospects_contacted"], 0);
    let (recorded, deferred) = (
        reached["messages_recorded"].as_u64().unwrap(),
        reached["messages_deferred"].as_u64().unwrap(),
    );
    assert_eq!(recorded + deferred, 2, "{reached}");
    let sequences = reached["sequences"].as_array().unwrap();
    assert_eq!(sequences.len(), 2);
    assert_eq!(sequences[0]["steps"].as_array().unwrap().len(), 4);
    assert_eq!(sequences[0]["steps"][0]["channel"], "email");

    // Layer 5 on the seed's sale: a client on the warm tier, its checklist, none done.
    let sold = json(&layer(&dir, "5", "onboarding.json"));
    let client = sold["client_id"].as_str().unwrap().to_owned();
    assert_eq!(sold["status"], "documents requested");
    assert_eq!(sold["tasks_completed"], 0);
    assert_eq!(sold["billing_tier"], "starter");
    assert_eq!(sold["tasks"].as_array().unwrap().len(), 6);
    // Once per address: the same sale again opens nothing new.
    let again = json(&layer(&dir, "5", "onboarding.json"));
    assert_eq!(again["client_id"], client.as_str());
    assert_eq!(again["reason"], "already onboarding");

    // Layer 6 on that client: proposals, none completed without a linked profile, no
    // gain claimed, and the score handed in answered back as not used.
    let example = |name: &str| -> serde_json::Value {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    assert_eq!(example("optimization.json")["client_id"], client.as_str());
    let optimized = json(&layer(&dir, "6", "optimization.json"));
    assert_eq!(optimized["optimizations_completed"], 0);
    assert_eq!(optimized["score_improvement"], serde_json::Value::Null);
    // Sold outside the pipeline, its profile never read: its score is not known.
    assert_eq!(optimized["run"]["score_before"], serde_json::Value::Null);
    assert!(optimized["posts_created"].as_u64().unwrap() > 0);
    assert!(
        !optimized["run"]["optimizations_proposed"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(optimized["not_used"][0]["current_gbp_score"], 45.0);

    // Layer 7: the month under way; the client's score is unknown (never read), so
    // the report claims none, and the figures handed in are answered back.
    assert_eq!(
        example("reporting.json")["clients"][0]["id"],
        client.as_str()
    );
    let reported = json(&layer(&dir, "7", "reporting.json"));
    assert_eq!(reported["reports_generated"], 1);
    let report = &reported["reports"][0];
    assert_eq!(report["client_id"], client.as_str());
    let names: Vec<&str> = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"gbp_score"), "{names:?}");
    assert_eq!(
        reported["metrics_analyzed"].as_u64().unwrap() as usize,
        names.len()
    );
    assert_eq!(reported["not_used"][0]["fields"]["monthly_revenue"], 1500);

    // Layer 8: the month's close; the new client's first invoice carries the setup fee.
    assert_eq!(example("finance.json")["clients"][0]["id"], client.as_str());
    let closed = json(&layer(&dir, "8", "finance.json"));
    assert_eq!(closed["invoices_generated"], 1);
    assert_eq!(closed["invoices"][0]["new_client"], true);
    // Starter: $500 a month and $1,000 setup, 8 % tax.
    assert_eq!(closed["invoices"][0]["invoice"]["total_cents"], 162_000);
    assert_eq!(closed["payments_received"], "$0.00");
    // Its software and support costs of the month.
    assert_eq!(closed["transactions_processed"], 2);

    // Layer 9 on the seed's performance data: every metric at or past its target.
    let assessed = json(&layer(&dir, "9", "feedback_loop.json"));
    assert_eq!(assessed["insights_generated"], 0);
    assert_eq!(assessed["optimizations_created"], 0);
    assert_eq!(assessed["phi_sync_improvement"], 0.0);
    let change = assessed["phi_sync_change_over_history"].as_f64().unwrap();
    assert!((change - 0.05).abs() < 1e-9, "{change}");
    // 15.0 is read as 15 %, the seed's way of writing it.
    let conversion = assessed["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "prospect_conversion")
        .unwrap()
        .clone();
    assert_eq!(conversion["value"], 0.15);
}

#[test]
fn performance_data_below_target_gives_an_insight_and_the_phi_gain_it_expects() {
    let dir = TempDir::new();
    let path = dir.0.join("low.json");
    let body = serde_json::json!({
        "performance_data": { "outreach": { "response_rate": 0.15 } },
        "phi_sync": 0.88
    });
    std::fs::write(&path, body.to_string()).unwrap();
    let out = cep_embedded(
        &dir,
        &["layer", "feedback_loop", "--input", path.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let v = json(&out);
    // 0.15 against 0.30: a 50 % gap, high confidence, impact 100; the expected gain is
    // outreach's weight 0.20 × half the gap (25 %) = 0.05 Φ, within the 0.12 headroom.
    assert_eq!(v["insights_generated"], 1);
    assert_eq!(v["insights"][0]["confidence"], "high");
    assert_eq!(v["optimizations_created"], 1);
    let gain = v["phi_sync_improvement"].as_f64().unwrap();
    assert!((gain - 0.05).abs() < 1e-9, "{gain}");
    assert_eq!(v["applied"], false);
}

#[test]
fn a_seed_input_that_cannot_be_honoured_is_refused_naming_why() {
    let dir = TempDir::new();
    let write = |name: &str, body: serde_json::Value| {
        let path = dir.0.join(name);
        std::fs::write(&path, body.to_string()).unwrap();
        path.display().to_string()
    };
    let cases = [
        (
            "2",
            serde_json::json!({ "prospects": [{ "id": "nobody" }] }),
            "prospect `nobody`",
        ),
        (
            "2",
            serde_json::json!({ "prospects": [], "channels": ["email"] }),
            "`prospects` is empty",
        ),
        (
            "2",
            serde_json::json!({ "prospects": [{ "id": "x" }], "channels": ["fax"] }),
            "layer 2's seed input is",
        ),
        (
            "4",
            serde_json::json!({ "webhook_payload": { "event": "invitee.created",
                "payload": { "email": "a@b.example", "name": "A" } }, "dry_run": false }),
            "`dry_run: false` is not taken",
        ),
        (
            "4",
            serde_json::json!({ "webhook_payload": { "event": "invitee.created",
                "payload": { "email": "a@b.example", "name": "A" } }, "signature": "t=1,v1=00" }),
            "POST /webhooks/calendly",
        ),
        (
            "3",
            serde_json::json!({ "pitches": [{ "prospect_id": "x" }], "channels": ["sms"] }),
            "the sequence starts with email",
        ),
        (
            "3",
            serde_json::json!({ "pitches": [{ "id": "pitch_1" }] }),
            "layer 3's seed input is",
        ),
        (
            "5",
            serde_json::json!({ "client_name": "A", "business_name": "B", "email": "nobody",
                "business_type": "dental" }),
            "`email` \"nobody\" is not an email address",
        ),
        (
            "5",
            serde_json::json!({ "client_name": "A", "business_name": "B", "email": "a@b.example",
                "business_type": "dental", "billing_tier": "platinum" }),
            "`platinum` is not a tier this agency sells",
        ),
        (
            "6",
            serde_json::json!({ "client_id": "nobody", "current_gbp_score": 45.0 }),
            "no client `nobody`",
        ),
        (
            "7",
            serde_json::json!({ "clients": [{ "id": "nobody" }], "report_type": "weekly" }),
            "no client `nobody`",
        ),
        (
            "8",
            serde_json::json!({ "clients": [{ "id": "nobody" }] }),
            "no client `nobody`",
        ),
        (
            "9",
            serde_json::json!({ "performance_data": { "outreach": { "vibes": 1.0 } } }),
            "`outreach.vibes` is not a metric this loop measures",
        ),
        (
            "9",
            serde_json::json!({ "performance_data": {}, "phi_sync": 1.5 }),
            "`phi_sync` 1.5 is not between 0 and 1",
        ),
    ];
    for (n, (layer, body, why)) in cases.into_iter().enumerate() {
        let path = write(&format!("in{n}.json"), body);
        let out = cep_embedded(&dir, &["layer", layer, "--input", &path])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(why),
            "case {n}: {err}"
        );
    }
}

#[test]
fn a_client_entry_that_contradicts_the_store_is_refused_naming_the_record() {
    let dir = TempDir::new();
    let run = |layer: &str, body: serde_json::Value| {
        let path = dir.0.join(format!("in{layer}.json"));
        std::fs::write(&path, body.to_string()).unwrap();
        cep_embedded(&dir, &["layer", layer, "--input", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let sold = json(&run(
        "5",
        serde_json::json!({ "client_name": "Ana Ruiz", "business_name": "Ruiz Plumbing",
            "email": "Ana@Ruiz.example", "business_type": "plumbing", "billing_tier": "professional" }),
    ));
    assert_eq!(sold["billing_tier"], "professional");
    assert!(sold.get("billing_tier_from").is_none());
    let client = sold["client_id"].as_str().unwrap();
    let refused = |out: std::process::Output, why: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{err}");
    };
    refused(
        run(
            "6",
            serde_json::json!({ "client_id": client, "business_name": "Oak Dental" }),
        ),
        "`business_name` \"Oak Dental\" is not client",
    );
    refused(
        run(
            "7",
            serde_json::json!({ "clients": [{ "id": client }], "report_type": "quarterly" }),
        ),
        "`report_type` \"quarterly\" is not made here",
    );
    refused(
        run(
            "8",
            serde_json::json!({ "clients": [{ "id": client, "billing_tier": "starter" }] }),
        ),
        "is billed at \"professional\", not \"starter\"",
    );
    refused(
        run(
            "8",
            serde_json::json!({ "clients": [{ "id": client, "new_client": false }] }),
        ),
        "is new: its first invoice is",
    );
    // Nothing was closed by the refusals: the close with the store's facts issues one.
    let closed = json(&run(
        "8",
        serde_json::json!({ "clients": [{ "id": client, "billing_tier": "professional", "new_client": true }] }),
    ));
    assert_eq!(closed["invoices_generated"], 1);
}
