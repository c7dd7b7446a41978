"""deploy/endpoint.yaml and deploy/partner-owner-role.yaml: cfn-lint clean, created through CloudFormation in
moto to CREATE_COMPLETE, and read back: the table, the function, and the least privilege of both roles.

moto's CloudFormation leaves some properties aside; those are checked in the template CloudFormation was
given (the stack's own template, read back with GetTemplate), never dropped from the template:
- AWS::ApiGateway::Stage is not supported (skipped with a warning);
- AWS::ApiGateway::RestApi: Policy and EndpointConfiguration are ignored;
- AWS::DynamoDB::Table: PointInTimeRecoverySpecification and SSESpecification are not applied;
- AWS::IAM::Role inline policies are stored as Python's repr of the document, and an ``!If`` that gives
  AWS::NoValue inside a Statement list stays as None (real CloudFormation removes it).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = ROOT / "deploy" / "endpoint.yaml"
PARTNER = ROOT / "deploy" / "partner-owner-role.yaml"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
PARTNER_ACCOUNT = "222222222222"
OWNER_ROLE = f"arn:aws:iam::{PARTNER_ACCOUNT}:role/mlspace-s3access-bucket-owner"
LOCAL_BUCKET = f"arn:aws:s3:::shared-{ACCOUNT}"
VPCE = "vpce-0123456789abcdef0"
ADMINS = f"arn:aws:sts::{ACCOUNT}:assumed-role/MLSpace-admin/*"
HANDLER = "mlspace_s3magic.admin.aws_lambda.handler"
OUR_POLICY_PATTERNS = (
    f"arn:aws:iam::{ACCOUNT}:policy/MLSpace-s3access-project-*",
    f"arn:aws:iam::{ACCOUNT}:policy/MLSpace-s3access-user-*",
)
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/mlspace-project-user-permission-boundary"
# Calls that need no permission (GetCallerIdentity) and condition keys that look like actions.
NOT_PERMISSIONS = {"sts:GetCallerIdentity", "kms:ViaService"}
# f-string templates in the code, for the entity the endpoint reads and writes: roles.
TEMPLATES = {"{entity}": "Role", "{kind}": "Role"}
ACTION_LITERAL = re.compile(r'"((?:iam|s3|kms|sts):[A-Za-z{}]+)"')
METHOD_CALL = re.compile(
    r'\b(?:self\.)?(iam|s3|kms|sts)\.(?:get_paginator\(\s*"([a-z0-9_]+)"|([a-z0-9_]+)\()'
)
RENAMED = {"s3:GetBucketEncryption": "s3:GetEncryptionConfiguration"}
VERBS = ("Get", "Put", "Delete", "List", "Create", "Attach", "Detach", "Assume", "Update", "Tag", "Untag")


def _build_script() -> Any:
    spec = importlib.util.spec_from_file_location("build_lambda_zip", ROOT / "deploy" / "build_lambda_zip.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- cfn-lint --


def _cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(
        [str(cfn_lint), "--format", "parseable", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("template", [ENDPOINT, PARTNER], ids=lambda path: path.name)
def test_cfn_lint_passes(template: Path) -> None:
    result = _cfn_lint(template)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The check above can fail: a deprecated runtime and a dangling reference are reported."""
    broken = tmp_path / "broken.yaml"
    text = ENDPOINT.read_text().replace("Runtime: python3.12", "Runtime: python3.7")
    broken.write_text(text.replace("!GetAtt LogGroup.Arn", "!GetAtt NoSuchLogGroup.Arn"))
    result = _cfn_lint(broken)
    assert result.returncode != 0
    assert "python3.7" in result.stdout
    assert "NoSuchLogGroup" in result.stdout


def test_the_template_runs_the_python_the_package_is_built_for() -> None:
    template = cfn_yaml.load(str(ENDPOINT))
    function = template["Resources"]["Function"]["Properties"]
    assert function["Runtime"] == f"python{_build_script().PYTHON_VERSION}"
    assert function["Handler"] == HANDLER


# -- the stacks in moto --


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def _create(cloudformation: Any, name: str, template: Path, values: dict[str, str], capability: str) -> Any:
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=template.read_text(),
        Parameters=_parameters(values),
        Capabilities=[capability],
    )
    waited = 0.0
    while (stack := cloudformation.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith(
        "_IN_PROGRESS"
    ) and waited < 60:
        time.sleep(0.2)
        waited += 0.2
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return stack


def _physical(cloudformation: Any, stack: str, logical: str) -> str:
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    return next(str(r["PhysicalResourceId"]) for r in resources if r.get("LogicalResourceId") == logical)


def _document(raw: Any) -> dict[str, Any]:
    """A role policy as moto returns it (see the module's note), with NoValue's None left out."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = ast.literal_eval(raw)
    assert isinstance(raw, dict)
    statements = raw["Statement"]
    raw["Statement"] = [s for s in (statements if isinstance(statements, list) else [statements]) if s]
    return raw


def _role_statements(iam: Any, role: str) -> list[dict[str, Any]]:
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert names, f"{role} has no inline policy"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    return [
        statement
        for name in names
        for statement in _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])[
            "Statement"
        ]
    ]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statements: list[dict[str, Any]], action: str, resource: str) -> list[dict[str, Any]]:
    """The Allow statements naming this action on this resource (conditions are returned, not evaluated)."""
    return [
        statement
        for statement in statements
        if statement["Effect"] == "Allow"
        and any(fnmatchcase(action.lower(), a.lower()) for a in _listed(statement["Action"]))
        and any(fnmatchcase(resource, r) for r in _listed(statement["Resource"]))
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in _listed(statement["Action"])}


# moto in its own process on loopback: an in-process mock_aws would reset the backends that the session's
# in-process sandbox (tests/conftest.py) shares, and inherit its IAM enforcement.
MOTO_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("%s:%d" % server.get_host_and_port(), flush=True)
sys.stdin.read()  # until the tests close it
server.stop()
"""


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", MOTO_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=output,
            text=True,
        )
    assert server.stdout and server.stdin
    address = server.stdout.readline().strip()
    assert address.startswith("127.0.0.1:"), f"moto did not start: {log.read_text()}"
    try:
        yield f"http://{address}"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def aws(moto_url: str) -> dict[str, Any]:
    """Clients of a freshly reset moto, with the code bucket and a stand-in package in it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=30)
    options: dict[str, Any] = {
        "region_name": REGION,
        "endpoint_url": moto_url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": Config(s3={"addressing_style": "path"}),
    }
    s3 = boto3.client("s3", **options)
    s3.create_bucket(Bucket="deploy-code", CreateBucketConfiguration={"LocationConstraint": REGION})
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr(
            "mlspace_s3magic/admin/aws_lambda.py", "def handler(event, context):\n    return {}\n"
        )
    s3.put_object(Bucket="deploy-code", Key="s3access/lambda.zip", Body=package.getvalue())
    return {
        name: boto3.client(name, **options)
        for name in ("cloudformation", "dynamodb", "lambda", "iam", "events", "apigateway")
    }


ENDPOINT_VALUES = {
    "CodeBucket": "deploy-code",
    "CodeKey": "s3access/lambda.zip",
    "AdminArnPatterns": ADMINS,
    "VpcEndpointId": VPCE,
    "OwnerRoleArns": OWNER_ROLE,
    "OwnerExternalId": "mlspace-partner-1",
    "LocalBucketArns": LOCAL_BUCKET,
    "WebhookUrl": "https://hooks.example.com/s3access",
}


@pytest.fixture
def endpoint(aws: dict[str, Any]) -> dict[str, Any]:
    stack = _create(aws["cloudformation"], "s3access", ENDPOINT, ENDPOINT_VALUES, "CAPABILITY_IAM")
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def test_the_table_is_the_store_the_endpoint_expects(aws: dict[str, Any], endpoint: dict[str, Any]) -> None:
    from mlspace_s3magic.admin.store.dynamodb import KEY_SCHEMA

    table = aws["dynamodb"].describe_table(TableName=endpoint["TableName"])["Table"]
    assert sorted(table["KeySchema"], key=str) == sorted(KEY_SCHEMA, key=str)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # Point-in-time recovery and encryption: moto does not apply them; the template the stack got has them.
    given = cfn_yaml.loads(aws["cloudformation"].get_template(StackName="s3access")["TemplateBody"])
    properties = given["Resources"]["Table"]["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert given["Resources"]["Table"]["DeletionPolicy"] == "Retain"


def test_the_function_is_configured_from_the_stack(aws: dict[str, Any], endpoint: dict[str, Any]) -> None:
    config = aws["lambda"].get_function_configuration(FunctionName=endpoint["FunctionName"])
    assert config["Handler"] == HANDLER
    assert config["Runtime"] == "python3.12"
    assert config["Role"] == endpoint["FunctionRoleArn"]
    url = endpoint["EndpointUrl"]
    api = aws["apigateway"].get_rest_apis()["items"][0]
    assert url == f"https://{api['id']}.execute-api.{REGION}.amazonaws.com/prod"
    assert config["Environment"]["Variables"] == {
        "S3ACCESS_STORE_URL": f"dynamodb://{endpoint['TableName']}",
        "S3ACCESS_ACCOUNTS": ACCOUNT,
        "S3ACCESS_ADMIN_ARN_PATTERNS": ADMINS,
        "S3ACCESS_AUDIENCE": url,
        "S3ACCESS_STS_ENDPOINT": f"https://sts.{REGION}.amazonaws.com",
        "S3ACCESS_WEBHOOK_URL": "https://hooks.example.com/s3access",
        "S3ACCESS_OWNER_EXTERNAL_ID": "mlspace-partner-1",
    }


def test_the_api_and_the_schedule_invoke_the_function(aws: dict[str, Any], endpoint: dict[str, Any]) -> None:
    function_arn = aws["lambda"].get_function(FunctionName=endpoint["FunctionName"])["Configuration"][
        "FunctionArn"
    ]
    api = aws["apigateway"].get_rest_apis()["items"][0]
    resources = aws["apigateway"].get_resources(restApiId=api["id"])["items"]
    assert {r["path"] for r in resources} == {"/", "/{proxy+}"}
    for resource in resources:
        integration = aws["apigateway"].get_method(
            restApiId=api["id"], resourceId=resource["id"], httpMethod="ANY"
        )
        assert integration["methodIntegration"]["type"] == "AWS_PROXY"
        assert function_arn in integration["methodIntegration"]["uri"]
    assert aws["apigateway"].get_deployments(restApiId=api["id"])["items"]

    (rule,) = aws["events"].list_rules()["Rules"]
    assert rule["ScheduleExpression"] == "rate(15 minutes)" and rule["State"] == "ENABLED"
    targets = aws["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert [target["Arn"] for target in targets] == [function_arn]

    grants = json.loads(aws["lambda"].get_policy(FunctionName=endpoint["FunctionName"])["Policy"])[
        "Statement"
    ]
    sources = {g["Principal"]["Service"]: g["Condition"]["ArnLike"]["AWS:SourceArn"] for g in grants}
    assert sources == {
        "apigateway.amazonaws.com": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api['id']}/*",
        "events.amazonaws.com": rule["Arn"],
    }


def test_the_api_is_private_to_the_notebooks_vpc_endpoint(
    aws: dict[str, Any], endpoint: dict[str, Any]
) -> None:
    """moto ignores the API's policy, endpoint type and stage: the template CloudFormation got is checked."""
    resources = cfn_yaml.loads(aws["cloudformation"].get_template(StackName="s3access")["TemplateBody"])[
        "Resources"
    ]
    api = resources["Api"]["Properties"]
    assert api["EndpointConfiguration"] == {"Types": [{"Ref": "EndpointType"}]}
    condition, private, regional = api["Policy"]["Fn::If"]
    assert condition == "IsPrivate" and regional == {"Ref": "AWS::NoValue"}
    allow, deny = private["Statement"]
    assert allow["Effect"] == "Allow" and allow["Action"] == "execute-api:Invoke"
    assert deny["Effect"] == "Deny" and deny["Resource"] == "execute-api:/*"
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceVpce": {"Ref": "VpcEndpointId"}}}
    stage = resources["Stage"]["Properties"]
    assert stage["DeploymentId"] == {"Ref": "Deployment"} and stage["StageName"] == {"Ref": "StageName"}
    template = cfn_yaml.load(str(ENDPOINT))
    assert template["Parameters"]["EndpointType"]["Default"] == "PRIVATE"
    assertion = template["Rules"]["PrivateApiNeedsVpcEndpoint"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Not": [{"Fn::Equals": [{"Ref": "VpcEndpointId"}, ""]}]}


def test_a_regional_endpoint_without_owner_roles_or_local_buckets(aws: dict[str, Any]) -> None:
    values = {"CodeBucket": "deploy-code", "CodeKey": "s3access/lambda.zip", "AdminArnPatterns": ADMINS}
    values |= {"EndpointType": "REGIONAL", "CallerAccounts": f"{ACCOUNT},333333333333"}
    stack = _create(aws["cloudformation"], "regional", ENDPOINT, values, "CAPABILITY_IAM")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
    variables = aws["lambda"].get_function_configuration(FunctionName=outputs["FunctionName"])["Environment"][
        "Variables"
    ]
    assert variables["S3ACCESS_ACCOUNTS"] == f"{ACCOUNT},333333333333"
    assert "S3ACCESS_WEBHOOK_URL" not in variables
    statements = _role_statements(aws["iam"], outputs["FunctionRoleArn"].rsplit("/", 1)[-1])
    assert "sts:AssumeRole" not in _actions(statements)
    assert not {"s3:PutBucketPolicy", "s3:DeleteBucketPolicy"} & _actions(statements)


# -- least privilege --


@pytest.fixture
def endpoint_statements(aws: dict[str, Any], endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    return _role_statements(aws["iam"], endpoint["FunctionRoleArn"].rsplit("/", 1)[-1])


def test_no_action_is_a_wildcard(endpoint_statements: list[dict[str, Any]]) -> None:
    assert all(statement["Effect"] == "Allow" for statement in endpoint_statements)
    for action in _actions(endpoint_statements):
        assert "*" not in action, action
    # Only the two IAM listings that take no resource are allowed on "*".
    unscoped = [s for s in endpoint_statements if "*" in _listed(s["Resource"])]
    assert [sorted(_listed(s["Action"])) for s in unscoped] == [["iam:ListPolicies", "iam:ListRoles"]]


def test_policy_writes_reach_only_the_boundary_and_our_grant_policies(
    endpoint_statements: list[dict[str, Any]],
) -> None:
    ours = f"arn:aws:iam::{ACCOUNT}:policy/MLSpace-s3access-project-analytics"
    users = f"arn:aws:iam::{ACCOUNT}:policy/MLSpace-s3access-user-alice"
    mlspace_project = f"arn:aws:iam::{ACCOUNT}:policy/MLSpace-project-analytics"
    notebook = f"arn:aws:iam::{ACCOUNT}:policy/mlspace-notebook-policy"
    for action in (
        "iam:CreatePolicyVersion",
        "iam:CreatePolicy",
        "iam:DeletePolicyVersion",
        "iam:DeletePolicy",
    ):
        assert _allows(endpoint_statements, action, ours) and _allows(endpoint_statements, action, users)
        assert not _allows(endpoint_statements, action, mlspace_project), action
        assert not _allows(endpoint_statements, action, notebook), action
    assert _allows(endpoint_statements, "iam:CreatePolicyVersion", BOUNDARY)
    for action in (
        "iam:DeletePolicyVersion",
        "iam:DeletePolicy",
        "iam:CreatePolicy",
        "iam:SetDefaultPolicyVersion",
    ):
        assert not _allows(endpoint_statements, action, BOUNDARY), action
    # MLSpace's own policies and roles are read, never written.
    assert _allows(endpoint_statements, "iam:GetPolicyVersion", mlspace_project)
    assert _allows(endpoint_statements, "iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/MLSpace-analytics-0a1b")


def test_attach_and_detach_only_our_policies_to_mlspace_roles(
    endpoint_statements: list[dict[str, Any]],
) -> None:
    member = f"arn:aws:iam::{ACCOUNT}:role/MLSpace-analytics-0a1b2c"
    for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
        (statement,) = _allows(endpoint_statements, action, member)
        assert statement["Condition"] == {"ArnLike": {"iam:PolicyARN": list(OUR_POLICY_PATTERNS)}}
        assert not _allows(endpoint_statements, action, f"arn:aws:iam::{ACCOUNT}:role/Admin")
        assert not _allows(endpoint_statements, action, f"arn:aws:iam::{ACCOUNT}:role/mlspace-notebook-role")
    for action in (
        "iam:AttachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:PutRolePolicy",
        "iam:UpdateAssumeRolePolicy",
    ):
        assert not _allows(endpoint_statements, action, member), action


def test_assume_only_the_registered_owner_roles(endpoint_statements: list[dict[str, Any]]) -> None:
    (statement,) = _allows(endpoint_statements, "sts:AssumeRole", OWNER_ROLE)
    assert _listed(statement["Resource"]) == [OWNER_ROLE]
    assert not _allows(endpoint_statements, "sts:AssumeRole", f"arn:aws:iam::{PARTNER_ACCOUNT}:role/Admin")


def test_key_policies_only_of_tagged_keys(endpoint_statements: list[dict[str, Any]]) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for action in ("kms:PutKeyPolicy", "kms:GetKeyPolicy"):
        (statement,) = _allows(endpoint_statements, action, key)
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceTag/mlspace-s3access-key-policy": "endpoint"}
        }
    assert not _allows(
        endpoint_statements, "kms:PutKeyPolicy", f"arn:aws:kms:{REGION}:{PARTNER_ACCOUNT}:key/k"
    )
    assert not _allows(endpoint_statements, "kms:Decrypt", key)


def test_bucket_policies_are_written_only_on_the_listed_local_buckets(
    endpoint_statements: list[dict[str, Any]],
) -> None:
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        (statement,) = _allows(endpoint_statements, action, LOCAL_BUCKET)
        assert _listed(statement["Resource"]) == [LOCAL_BUCKET]
        assert not _allows(endpoint_statements, action, f"arn:aws:s3:::mlspace-data-{ACCOUNT}")
    (read,) = _allows(endpoint_statements, "s3:GetBucketPolicy", "arn:aws:s3:::any-bucket")
    assert read["Condition"] == {"StringEquals": {"aws:ResourceAccount": ACCOUNT}}
    assert not _allows(endpoint_statements, "s3:GetObject", LOCAL_BUCKET + "/key")


def test_the_store_and_the_logs_are_its_own(aws: dict[str, Any], endpoint: dict[str, Any]) -> None:
    statements = _role_statements(aws["iam"], endpoint["FunctionRoleArn"].rsplit("/", 1)[-1])
    table_arn = aws["dynamodb"].describe_table(TableName=endpoint["TableName"])["Table"]["TableArn"]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _listed(s["Action"]))]
    assert [_listed(s["Resource"]) for s in dynamodb] == [[table_arn]]
    assert "dynamodb:DeleteTable" not in _actions(statements) and "dynamodb:Scan" not in _actions(statements)
    logs = [s for s in statements if any(a.startswith("logs:") for a in _listed(s["Action"]))]
    # CloudFormation's LogGroup.Arn ends with ":*" (every stream of the group); moto's without it.
    (resources,) = [[r.removesuffix(":*") for r in _listed(s["Resource"])] for s in logs]
    assert resources == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{endpoint['LogGroupName']}"]


def _action(service: str, method: str) -> str:
    """The IAM action of a boto3 method (``get_bucket_encryption`` is s3:GetEncryptionConfiguration)."""
    action = f"{service}:" + "".join(part.title() for part in method.split("_"))
    return RENAMED.get(action, action)


def _code_actions() -> set[str]:
    """The IAM, S3, KMS and STS actions the endpoint's code calls: the actions it names (``aws_call``, the
    layers' read and write calls in core/layer_kinds.py) and the boto3 methods it calls on clients named
    after their service (``iam.get_policy(...)``, ``iam.get_paginator("list_roles")``)."""
    core = ROOT / "mlspace_s3magic" / "core"
    sources = [
        *(ROOT / "mlspace_s3magic" / "admin").rglob("*.py"),
        core / "layers.py",
        core / "layer_kinds.py",
    ]
    found = set()
    for path in sources:
        text = path.read_text()
        for literal in ACTION_LITERAL.findall(text):
            for template, value in TEMPLATES.items():
                literal = literal.replace(template, value)
            found.add(literal)
        for service, paginated, method in METHOD_CALL.findall(text):
            if (paginated or method) != "get_paginator":
                found.add(_action(service, paginated or method))
    return {
        action for action in found if action not in NOT_PERMISSIONS and action.split(":")[1].startswith(VERBS)
    }


def _store_actions() -> set[str]:
    """The DynamoDB calls of the store and of the layers' lease, as actions: TransactWriteItems is authorised
    item by item (its Put, Update, Delete and ConditionCheck items); CreateTable is CloudFormation's job."""
    calls, items = set(), set()
    admin = ROOT / "mlspace_s3magic" / "admin"
    for path in [*(admin / "store").glob("*.py"), admin / "lease.py"]:
        text = path.read_text()
        calls |= set(re.findall(r"client\.([a-z_]+)\(", text)) | set(
            re.findall(r'_call\(\s*"([a-z_]+)"', text)
        )
        items |= set(re.findall(r'\{"(Put|Update|Delete|ConditionCheck)":', text))
    calls -= {"get_waiter", "create_table", "transact_write_items"}
    return {_action("dynamodb", call) for call in calls} | {f"dynamodb:{item}Item" for item in items}


def test_the_roles_allow_exactly_what_the_code_calls(aws: dict[str, Any], endpoint: dict[str, Any]) -> None:
    endpoint_actions = _actions(_role_statements(aws["iam"], endpoint["FunctionRoleArn"].rsplit("/", 1)[-1]))
    owner = _partner_stack(aws, endpoint["FunctionRoleArn"], keys="arn:aws:kms:eu-west-1:222222222222:key/k1")
    owner_actions = _actions(_role_statements(aws["iam"], owner))
    code = _code_actions()
    assert {"iam:CreatePolicyVersion", "iam:AttachRolePolicy", "s3:PutBucketPolicy", "sts:AssumeRole"} <= code
    assert code - (endpoint_actions | owner_actions) == set()
    assert {a for a in endpoint_actions if a.split(":")[0] in ("iam", "s3", "kms", "sts")} - code == set()
    assert owner_actions - code == set()
    store = _store_actions()
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"} <= store
    assert {a for a in endpoint_actions if a.startswith("dynamodb:")} == store


# -- the partner's owner role --


def _partner_stack(aws: dict[str, Any], endpoint_role: str, *, keys: str = "") -> str:
    values = {
        "EndpointRoleArn": endpoint_role,
        "ExternalId": "mlspace-partner-1",
        "BucketArns": "arn:aws:s3:::BucketToBeShared,arn:aws:s3:::partner-results",
        "KmsKeyArns": keys,
    }
    name = "owner-with-keys" if keys else "owner"
    _create(aws["cloudformation"], name, PARTNER, values, "CAPABILITY_NAMED_IAM")
    return _physical(aws["cloudformation"], name, "OwnerRole")


def test_the_owner_role_trusts_only_the_endpoint_with_the_external_id(
    aws: dict[str, Any], endpoint: dict[str, Any]
) -> None:
    role_name = _partner_stack(aws, endpoint["FunctionRoleArn"])
    role = aws["iam"].get_role(RoleName=role_name)["Role"]
    assert role_name == "mlspace-s3access-bucket-owner"
    trust = _document(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": endpoint["FunctionRoleArn"]},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "mlspace-partner-1"}},
        }
    ]
    (statement,) = _role_statements(aws["iam"], role_name)
    assert sorted(_listed(statement["Action"])) == [
        "s3:DeleteBucketPolicy",
        "s3:GetBucketPolicy",
        "s3:GetEncryptionConfiguration",
        "s3:PutBucketPolicy",
    ]
    assert _listed(statement["Resource"]) == ["arn:aws:s3:::BucketToBeShared", "arn:aws:s3:::partner-results"]


def test_the_owner_role_edits_the_named_keys_policies_only(
    aws: dict[str, Any], endpoint: dict[str, Any]
) -> None:
    key = f"arn:aws:kms:{REGION}:{PARTNER_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    statements = _role_statements(aws["iam"], _partner_stack(aws, endpoint["FunctionRoleArn"], keys=key))
    assert _allows(statements, "kms:PutKeyPolicy", key) and _allows(statements, "kms:GetKeyPolicy", key)
    assert not _allows(statements, "kms:PutKeyPolicy", key.replace("1234abcd", "99999999"))
    assert not _allows(statements, "kms:Decrypt", key)
    assert not _allows(statements, "s3:GetObject", "arn:aws:s3:::BucketToBeShared/data.csv")


# -- the deployment package's checks (`make lambda-zip` runs pip, so is run by hand; its checks run here) --


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "")
    return path


def test_the_package_check_accepts_the_endpoint_and_its_dependencies(tmp_path: Path) -> None:
    build = _build_script()
    names = [
        "mlspace_s3magic/__init__.py",
        "mlspace_s3magic/admin/aws_lambda.py",
        "fastapi/__init__.py",
        f"pydantic_core/_pydantic_core.cpython-{build.PYTHON_VERSION.replace('.', '')}-x86_64-linux-gnu.so",
    ]
    build.check_contents(_zip(tmp_path / "good.zip", names))


@pytest.mark.parametrize(
    ("extra", "missing", "complaint"),
    [
        ("jupyter_server/__init__.py", None, "jupyter_server"),
        ("IPython/__init__.py", None, "IPython"),
        ("mlspace_s3magic/labextension/static/style.js", None, "JupyterLab extension"),
        ("pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so", None, "another Python"),
        (None, "mlspace_s3magic/admin/aws_lambda.py", "handler"),
    ],
)
def test_the_package_check_refuses_jupyter_a_wrong_python_or_no_handler(
    tmp_path: Path, extra: str | None, missing: str | None, complaint: str
) -> None:
    build = _build_script()
    names = ["mlspace_s3magic/__init__.py", "mlspace_s3magic/admin/aws_lambda.py", "fastapi/__init__.py"]
    names = [name for name in [*names, extra] if name and name != missing]
    with pytest.raises(SystemExit, match=complaint):
        build.check_contents(_zip(tmp_path / "bad.zip", names))


def test_bytecode_is_compiled_only_for_the_runtimes_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _build_script()
    (tmp_path / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(build, "PYTHON_VERSION", "3.0")
    build.compile_for_runtime(tmp_path)
    assert not (tmp_path / "__pycache__").exists()
    monkeypatch.setattr(build, "PYTHON_VERSION", f"{sys.version_info.major}.{sys.version_info.minor}")
    build.compile_for_runtime(tmp_path)
    (compiled,) = (tmp_path / "__pycache__").iterdir()
    flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked: valid whatever the zip's timestamps
