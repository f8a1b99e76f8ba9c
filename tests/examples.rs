//! The inputs in `examples/`, run through `cep layer` on the embedded default as a user
//! would: layer 1's search, then the seed API document's shapes for layers 2 and 4.

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
