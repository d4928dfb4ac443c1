#!/usr/bin/env bash
# Kafka ACLs for anomalyd: only the daemon's principal may write the topics it trusts;
# producers of events may write `events` and nothing else.
#
# Anyone who can write `silences` can mute any alert, `feedback` can move thresholds,
# `notify.log` can make a page look already sent, `alerts.state`, `<app.id>-state` and
# `alerts` are read back as the daemon's own state and output. Only `events` is checked
# record by record (and dead-lettered) as untrusted input.
#
# Needs a cluster with an authorizer (KRaft: authorizer.class.name=
# org.apache.kafka.metadata.authorizer.StandardAuthorizer) and the default
# allow.everyone.if.no.acl.found=false, so that what is not granted here is refused.
#
#   BOOTSTRAP=kafka:9093 ADMIN_CONFIG=admin.properties \
#   DAEMON=User:anomalyd PRODUCERS="User:checkout User:search" deploy/kafka/acls.sh
#
# KAFKA_ACLS=echo prints the commands instead of running them.
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:?the brokers, host:port}"
ADMIN_CONFIG="${ADMIN_CONFIG:-}"            # client properties of an admin principal
DAEMON="${DAEMON:-User:anomalyd}"           # the principal every anomalyd worker uses
PRODUCERS="${PRODUCERS:-}"                  # principals that produce events, space-separated
READERS="${READERS:-}"                      # principals that may read alerts, drift, dead letters
APP_ID="${APP_ID:-anomalyd}"                # app.id: the consumer group and topic prefix
KAFKA_ACLS="${KAFKA_ACLS:-kafka-acls.sh}"

# The topic names of the config (`topics:`); change them here if yours differ.
EVENTS="${TOPIC_EVENTS:-events}"
OUTPUTS=("${TOPIC_EVENTS_DLQ:-events.dlq}" "${TOPIC_ALERTS:-alerts}"
         "${TOPIC_ALERTS_DLQ:-alerts.dlq}" "${TOPIC_DRIFT:-drift}")
TRUSTED=("${TOPIC_SILENCES:-silences}" "${TOPIC_FEEDBACK:-feedback}"
         "${TOPIC_NOTIFY_LOG:-notify.log}" "${TOPIC_ALERT_STATE:-alerts.state}")

acls() {
    local admin=()
    if [[ -n "$ADMIN_CONFIG" ]]; then admin=(--command-config "$ADMIN_CONFIG"); fi
    "$KAFKA_ACLS" --bootstrap-server "$BOOTSTRAP" "${admin[@]}" --add "$@"
}

# The daemon: everything on its topics (it creates them when missing), and its internal
# ones under `<app.id>-` (`-events-by-stream`, `-state`, Faust's own).
for topic in "$EVENTS" "${OUTPUTS[@]}" "${TRUSTED[@]}"; do
    acls --allow-principal "$DAEMON" --operation All --topic "$topic"
done
acls --allow-principal "$DAEMON" --operation All --resource-pattern-type prefixed \
    --topic "$APP_ID-"
acls --allow-principal "$DAEMON" --operation All --resource-pattern-type prefixed \
    --group "$APP_ID"
acls --allow-principal "$DAEMON" --operation Create --operation DescribeConfigs --cluster

# Producers: write events, nothing else.
for principal in $PRODUCERS; do
    acls --allow-principal "$principal" --operation Write --operation Describe \
        --topic "$EVENTS"
done

# Readers (dashboards, tools): read what the daemon publishes, write nothing.
for principal in $READERS; do
    for topic in "${OUTPUTS[@]}"; do
        acls --allow-principal "$principal" --operation Read --operation Describe \
            --topic "$topic"
    done
done
