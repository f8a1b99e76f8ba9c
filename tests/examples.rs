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
