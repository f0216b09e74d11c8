// An envelope's wire bytes: decode and check without panicking, and decode the payload as
// the event it claims to be.
{
    if let Ok((env, _)) = eduledger_store::Envelope::decode_checked(data) {
        let _ = eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload);
    }
}
