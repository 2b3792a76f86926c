/**
 * What restic v0.19.1 (the version Backrest v1.14.1 pins) and the SDKs it links read from its environment
 * for each backend's credentials, endpoints, regions and credential files: the facts the repository policy
 * masks by. Backrest starts restic with its own whole environment and appends the repo's `env` entries
 * (`internal/orchestrator/repo/repo.go:42-60` in Backrest), and Go's `os/exec` keeps the last value of a
 * repeated key (`os/exec/exec.go` `dedupEnv`), so an entry `KEY=` sent with the repo hides Backrest's own
 * `KEY` from restic. Every variable below is read with `os.Getenv(...) != ""` or a fallback on empty, so
 * empty means unset, except where a note says otherwise. Paths are in the module
 * `github.com/restic/restic@v0.19.1` unless another module is named; SDK versions are restic's go.mod's.
 * Rule: this file holds facts only; repository_policy.ts decides what to do with them.
 */
import type { Backend } from "../api/mod.ts";

/** One backend's environment, as restic and its SDK read it. */
export interface BackendEnv {
  /**
   * Key sets that each give restic credentials of the repository's own; the Secret must supply one set
   * whole, every value non-empty, or the backend falls back to Backrest's identity. Empty: no set exists
   * (the backend has only Backrest's identity); `undefined`: the backend needs no credentials.
   */
  readonly own?: readonly (readonly string[])[];
  /** Every variable read for this backend's credentials, endpoints, regions and credential files. */
  readonly reads: readonly string[];
  /** What restic uses, beyond these variables, when the Secret brings no credentials: for the refusal. */
  readonly ambient?: string;
}

/** Variables read for every backend that carry Backrest's own identity. */
export const EVERY_BACKEND_READS: readonly string[] = [
  // A TLS client certificate and key presented to every HTTP backend's server
  // (internal/global/global.go:129, internal/backend/http_transport.go:106-117).
  "RESTIC_TLS_CLIENT_CERT",
];

/** Per backend: the sets of the Secret's own credentials and everything restic reads (see the module rules). */
export const RESTIC_ENV: Readonly<Record<Backend, BackendEnv>> = {
  // minio-go v7.1.0 through internal/backend/s3/s3.go:103-196: always a credential chain,
  // EnvAWS -> EnvMinio -> FileAWSCredentials -> FileMinioClient -> IAM; a provider is skipped only when both
  // halves of its key are empty (pkg/credentials/chain.go:63), so non-empty keys from the Secret end the
  // chain before any file or metadata service. But EnvAWS takes AWS_SESSION_TOKEN from the environment
  // whatever supplied the keys (pkg/credentials/env_aws.go:62), and AWS_ACCESS_KEY / AWS_SECRET_KEY fill
  // an empty half (env_aws.go:43-51).
  s3: {
    own: [["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]],
    reads: [
      "AWS_ACCESS_KEY_ID", // env_aws.go:43
      "AWS_ACCESS_KEY", // env_aws.go:45
      "AWS_SECRET_ACCESS_KEY", // env_aws.go:48
      "AWS_SECRET_KEY", // env_aws.go:50
      "AWS_SESSION_TOKEN", // env_aws.go:62
      "AWS_DEFAULT_REGION", // internal/backend/s3/config.go:113-117
      "MINIO_ROOT_USER", // pkg/credentials/env_minio.go:44-50
      "MINIO_ROOT_PASSWORD",
      "MINIO_ACCESS_KEY",
      "MINIO_SECRET_KEY",
      "AWS_SHARED_CREDENTIALS_FILE", // file_aws_credentials.go:75-84 (empty: ~/.aws/credentials)
      "AWS_PROFILE", // file_aws_credentials.go:85-90
      "MINIO_SHARED_CREDENTIALS_FILE", // file_minio_client.go:59-71 (LookupEnv: empty turns it off)
      "MINIO_ALIAS", // file_minio_client.go:74-79
      "AWS_CONTAINER_AUTHORIZATION_TOKEN", // pkg/credentials/iam_aws.go:103-141
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_ROLE_ARN",
      "AWS_ROLE_SESSION_NAME",
      "AWS_REGION", // iam_aws.go:158-168
      "RESTIC_AWS_ASSUME_ROLE_ARN", // internal/backend/s3/s3.go:152-164
      "RESTIC_AWS_ASSUME_ROLE_REGION",
      "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
      "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID",
      "RESTIC_AWS_ASSUME_ROLE_POLICY",
      "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
    ],
    ambient: "Backrest's ~/.aws/credentials, ~/.mc/config.json, IRSA, ECS or EC2 instance identity",
  },
  // internal/backend/azure/config.go:66-87 and azure.go:55-134: a non-empty account key wins over the SAS;
  // with neither, azidentity v1.13.1's DefaultAzureCredential (environment, workload identity, managed
  // identity, the az CLI) or, with AZURE_FORCE_CLI_CREDENTIAL, the az CLI. AZURE_TOKEN_CREDENTIALS is read
  // with LookupEnv (default_azure_credential.go:112-135): empty makes DefaultAzureCredential fail.
  azure: {
    own: [["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"], ["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_SAS"]],
    reads: [
      "AZURE_ACCOUNT_NAME", // config.go:68
      "AZURE_ACCOUNT_KEY", // config.go:72
      "AZURE_ACCOUNT_SAS", // config.go:76
      "AZURE_FORCE_CLI_CREDENTIAL", // config.go:79
      "AZURE_ENDPOINT_SUFFIX", // config.go:85; the URL is https://<account>.blob.<suffix>/ (azure.go:72)
      "AZURE_TOKEN_CREDENTIALS", // azidentity default_azure_credential.go:112
      "AZURE_ADDITIONALLY_ALLOWED_TENANTS", // default_azure_credential.go:139
      "AZURE_TENANT_ID", // environment_credential.go:78-155, workload_identity.go:67-105
      "AZURE_CLIENT_ID",
      "AZURE_CLIENT_SECRET",
      "AZURE_CLIENT_CERTIFICATE_PATH",
      "AZURE_CLIENT_CERTIFICATE_PASSWORD",
      "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
      "AZURE_USERNAME",
      "AZURE_PASSWORD",
      "AZURE_FEDERATED_TOKEN_FILE",
      "AZURE_AUTHORITY_HOST", // azidentity.go:79
      "AZURE_REGIONAL_AUTHORITY_NAME",
      "IDENTITY_ENDPOINT", // microsoft-authentication-library-for-go apps/managedidentity/managedidentity.go:286-310
      "IDENTITY_HEADER",
      "IDENTITY_SERVER_THUMBPRINT",
      "MSI_ENDPOINT",
      "MSI_SECRET",
      "IMDS_ENDPOINT",
      "DEFAULT_IDENTITY_CLIENT_ID",
      "AZURE_CONFIG_DIR", // the az CLI's (developer_credential_util.go:25-41 runs it with this environment)
      "AZD_CONFIG_DIR",
    ],
    ambient: "Backrest's workload or managed identity and its az CLI login",
  },
  // internal/backend/gs/gs.go:66-77: GOOGLE_ACCESS_TOKEN (which VolSync's mover does not pass), else
  // golang.org/x/oauth2 google.DefaultTokenSource: GOOGLE_APPLICATION_CREDENTIALS (a path), the gcloud
  // file in Backrest's HOME, the metadata server. cloud.google.com/go/storage honours
  // STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_UNIVERSE_DOMAIN, which send the bearer token elsewhere.
  gs: {
    own: [],
    reads: [
      "GOOGLE_PROJECT_ID", // internal/backend/gs/config.go:65-69
      "GOOGLE_ACCESS_TOKEN", // gs.go:66
      "GOOGLE_APPLICATION_CREDENTIALS", // oauth2 google/default.go:237
      "GCE_METADATA_HOST", // cloud.google.com/go/compute/metadata metadata.go:456-460
      "STORAGE_EMULATOR_HOST", // cloud.google.com/go/storage storage.go:177-202
      "STORAGE_EMULATOR_HOST_GRPC",
      "GOOGLE_CLOUD_UNIVERSE_DOMAIN", // google.golang.org/api internal/settings.go:251-259
      "GOOGLE_API_USE_MTLS_ENDPOINT", // google.golang.org/api internal/cba.go:146,204-206
      "GOOGLE_API_USE_MTLS",
      "GOOGLE_API_USE_CLIENT_CERTIFICATE",
      "GOOGLE_CLOUD_QUOTA_PROJECT",
    ],
    ambient: "Backrest's Google identity (its gcloud login or the metadata server)",
  },
  // internal/backend/b2/config.go:88-95 and b2.go:63-69: both required, no fallback of any kind.
  b2: {
    own: [["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"]],
    reads: ["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"],
    ambient: "Backrest's B2_ACCOUNT_ID and B2_ACCOUNT_KEY",
  },
  // internal/backend/swift/config.go:80-133: each field takes the first non-empty variable in list order,
  // OS_* before ST_* (so Backrest's OS_PASSWORD beats a Secret's ST_KEY), and with OS_STORAGE_URL and
  // OS_AUTH_TOKEN both set there is no authentication step at all (swift.go:78-83).
  swift: {
    own: [
      ["ST_AUTH", "ST_USER", "ST_KEY"],
      ["OS_AUTH_URL", "OS_PASSWORD"],
      ["OS_AUTH_URL", "OS_APPLICATION_CREDENTIAL_SECRET"],
      ["OS_STORAGE_URL", "OS_AUTH_TOKEN"],
    ],
    reads: [
      "OS_USERNAME",
      "OS_PASSWORD",
      "OS_REGION_NAME",
      "OS_AUTH_URL",
      "OS_USER_ID",
      "OS_USER_DOMAIN_NAME",
      "OS_USER_DOMAIN_ID",
      "OS_PROJECT_NAME",
      "OS_PROJECT_DOMAIN_NAME",
      "OS_PROJECT_DOMAIN_ID",
      "OS_TRUST_ID",
      "OS_TENANT_ID",
      "OS_TENANT_NAME",
      "ST_AUTH",
      "ST_USER",
      "ST_KEY",
      "OS_APPLICATION_CREDENTIAL_ID",
      "OS_APPLICATION_CREDENTIAL_NAME",
      "OS_STORAGE_URL",
      "OS_APPLICATION_CREDENTIAL_SECRET",
      "OS_AUTH_TOKEN",
    ],
    ambient: "Backrest's OpenStack or swift credentials",
  },
  // internal/backend/rest/config.go:79-90: the environment's user and password are used only when the
  // URL carries none, and are then sent as Basic auth to the repository's server.
  rest: { reads: ["RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"] },
  // internal/backend/sftp: no credential variables; ssh logs in with Backrest's keys (from its passwd
  // home, not HOME), its agent, askpass and ssh_config.
  sftp: {
    own: [],
    reads: ["SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY"],
    ambient: "Backrest's SSH keys and agent",
  },
  // internal/backend/rclone: runs rclone with Backrest's environment minus RESTIC_*; rclone reads every
  // RCLONE_* variable and its config file, which no list of masks covers.
  rclone: { own: [], reads: [], ambient: "Backrest's rclone configuration and every RCLONE_* variable" },
  // Backrest's own disk; no variables.
  local: { reads: [] },
};
