#!/usr/bin/env bash
# Prepares an AWS account for SPOTIFY_ASSETS_WAREHOUSE=iceberg in production (run once, as an
# administrator, with the AWS CLI v2): the Glue database of the lake's tables and views, and the
# Athena workgroup (engine 3, results under the bucket's athena-results/ prefix, results
# encrypted, the workgroup's settings enforced). The pipeline's role then needs only
# iam-policy.json (fill in the same values). The tables themselves are created by the pipeline
# (pyiceberg, in the Glue database), the views by the view assets (CREATE OR REPLACE VIEW).
set -euo pipefail

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
BUCKET="${SPOTIFY_ASSETS_S3_BUCKET:?set SPOTIFY_ASSETS_S3_BUCKET}"
PREFIX="${SPOTIFY_ASSETS_S3_PREFIX:-spotify-assets}"
DATABASE="${SPOTIFY_ASSETS_LAKE_DATABASE:-spotify_assets}"
WORKGROUP="${SPOTIFY_ASSETS_ATHENA_WORKGROUP:-spotify_assets}"

aws glue create-database --region "$REGION" --database-input "{
  \"Name\": \"$DATABASE\",
  \"Description\": \"spotify-assets: Iceberg tables (pyiceberg) and Athena views\",
  \"LocationUri\": \"s3://$BUCKET/$PREFIX/lake/$DATABASE.db\"
}"

aws athena create-work-group --region "$REGION" --name "$WORKGROUP" \
  --description "spotify-assets views, checks and features" \
  --configuration "{
    \"ResultConfiguration\": {
      \"OutputLocation\": \"s3://$BUCKET/$PREFIX/athena-results/\",
      \"EncryptionConfiguration\": {\"EncryptionOption\": \"SSE_S3\"}
    },
    \"EnforceWorkGroupConfiguration\": true,
    \"PublishCloudWatchMetricsEnabled\": true,
    \"BytesScannedCutoffPerQuery\": 10737418240,
    \"EngineVersion\": {\"SelectedEngineVersion\": \"Athena engine version 3\"}
  }"

echo "Glue database $DATABASE and Athena workgroup $WORKGROUP are ready in $REGION."
