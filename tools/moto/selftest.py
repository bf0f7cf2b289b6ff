#!/usr/bin/env python3
"""Self-test of edgeplan_moto.py (each moto patch) and fault_proxy.py (each fault's wire shape).

Run with the moto venv's python: `python tools/moto/selftest.py` (`cargo xtask moto` does).
Starts both on free loopback ports, checks them with boto3, stops them; exits non-zero on any
failure.
"""

import http.client
import json
import re
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
REGION = "eu-west-1"
STACK = "selftest"
STARTUP_TIMEOUT_S = 30


def start(script, *args, stderr=None):
    """Start a server script; return (process, URL) from its one `... listening on URL` line."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    first = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_S)
    match = re.fullmatch(r"edgeplan-[a-z-]+ listening on (http://127\.0\.0\.1:\d+)\n", "".join(first))
    if not match:
        proc.kill()
        sys.exit(f"selftest: {script} did not start: {first!r}")
    return proc, match.group(1)


def clients(url, retries=True):
    config = Config(retries={"total_max_attempts": 1}) if not retries else None
    kwargs = dict(
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )
    return tuple(boto3.client(s, **kwargs) for s in ("ec2", "elbv2", "iam"))


def tags(resource_type, **pairs):
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}
    ]


def tag_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def error_of(call, *args, **kwargs):
    """(code, HTTP status) of the ClientError that `call` must raise."""
    try:
        call(*args, **kwargs)
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} succeeded; an error was expected")


def expect(actual, wanted, what):
    if actual != wanted:
        raise AssertionError(f"{what}: got {actual!r}, want {wanted!r}")


class World:
    """A provider VPC with an NLB behind two endpoint services, one needing acceptance."""

    def __init__(self, ec2, elbv2):
        self.vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(
                VpcId=self.vpc,
                CidrBlock=f"192.168.{i}.0/24",
                AvailabilityZone=f"{REGION}{az}",
                TagSpecifications=tags("subnet", stack=STACK),
            )["Subnet"]["SubnetId"]
            for i, az in enumerate("ab", start=1)
        ]
        self.nlb = elbv2.create_load_balancer(
            Name="tunnel",
            Subnets=self.subnets,
            Scheme="internal",
            Type="network",
            Tags=[{"Key": "stack", "Value": STACK}],
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.target_group = elbv2.create_target_group(
            Name="tunnel", Protocol="TCP", Port=8000, VpcId=self.vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        self.listener = elbv2.create_listener(
            LoadBalancerArn=self.nlb,
            Protocol="TCP",
            Port=8000,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": self.target_group}],
        )["Listeners"][0]["ListenerArn"]
        self.service, self.open_service = (
            ec2.create_vpc_endpoint_service_configuration(
                NetworkLoadBalancerArns=[self.nlb],
                AcceptanceRequired=required,
                TagSpecifications=tags("vpc-endpoint-service", stack=STACK, name=name),
            )["ServiceConfiguration"]
            for required, name in ((True, "gated"), (False, "open"))
        )

    def endpoint(self, ec2, service, **extra):
        return ec2.create_vpc_endpoint(
            VpcId=self.vpc,
            ServiceName=service["ServiceName"],
            VpcEndpointType="Interface",
            SubnetIds=self.subnets[:1],
            TagSpecifications=tags("vpc-endpoint", stack=STACK),
            **extra,
        )["VpcEndpoint"]


def endpoint_state(ec2, endpoint_id):
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]["State"]


def test_pending_acceptance(ec2, elbv2, iam, world):
    gated = world.endpoint(ec2, world.service)
    expect(gated["State"], "pendingAcceptance", "create response, AcceptanceRequired=true")
    expect(endpoint_state(ec2, gated["VpcEndpointId"]), "pendingAcceptance", "described")
    open_ = world.endpoint(ec2, world.open_service)
    expect(open_["State"], "available", "create response, AcceptanceRequired=false")


def test_endpoint_connections(ec2, elbv2, iam, world, moto_url):
    service_id = world.service["ServiceId"]
    gated = world.endpoint(ec2, world.service)["VpcEndpointId"]
    other = world.endpoint(ec2, world.open_service)["VpcEndpointId"]

    def connections(**filters):
        flt = [{"Name": k.replace("_", "-"), "Values": v} for k, v in filters.items()]
        return ec2.describe_vpc_endpoint_connections(Filters=flt)["VpcEndpointConnections"]

    mine = connections(service_id=[service_id], vpc_endpoint_id=[gated])
    expect(len(mine), 1, "connections of the new endpoint")
    conn = mine[0]
    expect(conn["VpcEndpointState"], "pendingAcceptance", "connection state")
    expect(conn["VpcEndpointOwner"], "123456789012", "owner")
    expect(conn["NetworkLoadBalancerArns"], [world.nlb], "NLB ARNs")
    expect(bool(conn["DnsEntries"][0]["DnsName"]), True, "DNS entry")
    expect("CreationTimestamp" in conn, True, "CreationTimestamp")
    pending = connections(vpc_endpoint_state=["pendingAcceptance"])
    expect(gated in {c["VpcEndpointId"] for c in pending}, True, "state filter")
    expect(other in {c["VpcEndpointId"] for c in pending}, False, "state filter")

    # The XML is AWS's: vpcEndpointConnectionSet/item/serviceId.
    form = f"Action=DescribeVpcEndpointConnections&Version=2016-11-15&Filter.1.Name=service-id&Filter.1.Value.1={service_id}"
    request = urllib.request.Request(
        moto_url,
        data=form.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=x",
        },
    )
    xml = urllib.request.urlopen(request, timeout=10).read().decode()
    expect(
        bool(re.search(r"<vpcEndpointConnectionSet>\s*<item>\s*<serviceId>", xml)),
        True,
        f"wire shape of DescribeVpcEndpointConnections: {xml[:300]}",
    )

    result = ec2.accept_vpc_endpoint_connections(
        ServiceId=service_id, VpcEndpointIds=[gated, "vpce-0123456789abcdef0", other]
    )
    failed = {u["ResourceId"]: u["Error"]["Code"] for u in result["Unsuccessful"]}
    expect(
        failed,
        {"vpce-0123456789abcdef0": "InvalidVpcEndpointId.NotFound", other: "InvalidVpcEndpointId.NotFound"},
        "unsuccessful items (unknown, other service's endpoint)",
    )
    expect(endpoint_state(ec2, gated), "available", "endpoint after accept")
    expect(connections(vpc_endpoint_id=[gated])[0]["VpcEndpointState"], "available", "connection")
    again = ec2.accept_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[gated])
    expect(again["Unsuccessful"], [], "accepting again")

    result = ec2.reject_vpc_endpoint_connections(ServiceId=service_id, VpcEndpointIds=[gated])
    expect(result["Unsuccessful"], [], "reject")
    expect(endpoint_state(ec2, gated), "rejected", "endpoint after reject")
    expect(
        error_of(
            ec2.accept_vpc_endpoint_connections,
            ServiceId="vpce-svc-00000000",
            VpcEndpointIds=[gated],
        )[0],
        "InvalidVpcEndpointServiceId.NotFound",
        "unknown service",
    )


def test_nlb_arns(ec2, elbv2, iam, world):
    expect(":loadbalancer/net/tunnel/" in world.nlb, True, f"NLB ARN {world.nlb}")
    expect(":listener/net/tunnel/" in world.listener, True, f"listener ARN {world.listener}")
    lbs = elbv2.describe_load_balancers(LoadBalancerArns=[world.nlb])["LoadBalancers"]
    expect([lb["LoadBalancerArn"] for lb in lbs], [world.nlb], "describe by ARN")
    by_name = elbv2.describe_load_balancers(Names=["tunnel"])["LoadBalancers"]
    expect([lb["LoadBalancerArn"] for lb in by_name], [world.nlb], "describe by name")
    described = elbv2.describe_tags(ResourceArns=[world.nlb])["TagDescriptions"][0]
    expect(tag_dict(described["Tags"]), {"stack": STACK}, "tags")
    listeners = elbv2.describe_listeners(LoadBalancerArn=world.nlb)["Listeners"]
    expect([ls["ListenerArn"] for ls in listeners], [world.listener], "listeners")
    expect(world.service["NetworkLoadBalancerArns"], [world.nlb], "endpoint service's NLB")
    alb = elbv2.create_load_balancer(Name="web", Subnets=world.subnets)["LoadBalancers"][0]
    expect(":loadbalancer/app/web/" in alb["LoadBalancerArn"], True, "an ALB keeps /app/")
    spare = elbv2.create_load_balancer(Name="spare", Subnets=world.subnets, Type="network")
    spare_arn = spare["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.delete_load_balancer(LoadBalancerArn=spare_arn)
    expect(
        error_of(elbv2.describe_load_balancers, LoadBalancerArns=[spare_arn])[0],
        "LoadBalancerNotFound",
        "deleted NLB",
    )


def test_custom_ids(ec2, elbv2, iam, world):
    vpc_id, subnet_id, sg_id = "vpc-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60001", "sg-0a1b2c3d4e5f60001"
    vpc = ec2.create_vpc(
        CidrBlock="10.1.0.0/16", TagSpecifications=tags("vpc", stack=STACK, _custom_id_=vpc_id)
    )
    expect(vpc["Vpc"]["VpcId"], vpc_id, "VPC ID")
    subnet = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock="10.1.1.0/24",
        TagSpecifications=tags("subnet", stack=STACK, _custom_id_=subnet_id),
    )
    expect(subnet["Subnet"]["SubnetId"], subnet_id, "subnet ID")
    sg = ec2.create_security_group(
        GroupName="cluster",
        Description="cluster",
        VpcId=vpc_id,
        TagSpecifications=tags("security-group", stack=STACK, _custom_id_=sg_id),
    )
    expect(sg["GroupId"], sg_id, "security group ID")
    described = (
        ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0],
        ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0],
        ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0],
    )
    for resource in described:
        expect(tag_dict(resource.get("Tags")), {"stack": STACK}, "tags (the ID tag is no tag)")
    # The VPC's own default security group got an ordinary ID.
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    expect(default_sg != sg_id, True, "default SG ID")
    expect(
        error_of(
            ec2.create_vpc, CidrBlock="10.2.0.0/16", TagSpecifications=tags("vpc", _custom_id_=vpc_id)
        )[0],
        "InvalidParameterValue",
        "a custom ID in use",
    )


def test_client_tokens(ec2, elbv2, iam, world):
    def twice(create, key, id_key, **params):
        first = create(ClientToken=f"token-{key}", **params)[key][id_key]
        second = create(ClientToken=f"token-{key}", **params)[key][id_key]
        expect(second, first, f"{key}: retried create with the same ClientToken")
        fresh = create(**params)[key][id_key]
        expect(fresh != first, True, f"{key}: a create with no token is a new object")
        return first

    twice(ec2.create_route_table, "RouteTable", "RouteTableId", VpcId=world.vpc)
    expect(
        error_of(ec2.create_route_table, ClientToken="token-RouteTable", VpcId=world.subnets[0])[0],
        "IdempotentParameterMismatch",
        "same token, other parameters",
    )
    twice(
        ec2.create_vpc_endpoint_service_configuration,
        "ServiceConfiguration",
        "ServiceId",
        NetworkLoadBalancerArns=[world.nlb],
        AcceptanceRequired=True,
    )
    endpoint = twice(
        ec2.create_vpc_endpoint,
        "VpcEndpoint",
        "VpcEndpointId",
        VpcId=world.vpc,
        ServiceName=world.service["ServiceName"],
        VpcEndpointType="Interface",
        SubnetIds=world.subnets[:1],
    )
    expect(endpoint_state(ec2, endpoint), "pendingAcceptance", "idempotent endpoint's state")


def test_service_configuration_filters(ec2, elbv2, iam, world):
    def service_ids(*filters):
        flt = [{"Name": n, "Values": v} for n, v in filters]
        configs = ec2.describe_vpc_endpoint_service_configurations(Filters=flt)
        return {c["ServiceId"] for c in configs["ServiceConfigurations"]}

    both = {world.service["ServiceId"], world.open_service["ServiceId"]}
    expect(service_ids(("tag:stack", [STACK])) >= both, True, "tag:stack")
    expect(service_ids(("tag:name", ["gated"])), {world.service["ServiceId"]}, "tag:name")
    expect(service_ids(("tag:stack", ["someone-else"])), set(), "tag filter, no match")
    expect(
        service_ids(("service-name", [world.open_service["ServiceName"]])),
        {world.open_service["ServiceId"]},
        "service-name",
    )
    zone_ids = ["euw1-az3", "euw1-az1"]  # moto's IDs of eu-west-1a and eu-west-1b
    config = ec2.describe_vpc_endpoint_service_configurations(
        ServiceIds=[world.service["ServiceId"]]
    )["ServiceConfigurations"][0]
    expect(config.get("AvailabilityZoneIds"), zone_ids, "configuration's AvailabilityZoneIds")
    detail = ec2.describe_vpc_endpoint_services(ServiceNames=[world.service["ServiceName"]])
    expect(detail["ServiceDetails"][0].get("AvailabilityZoneIds"), zone_ids, "service detail's")


def test_native_tag_filters(ec2, elbv2, iam, world):
    """moto does these itself; checked so a moto upgrade that breaks one shows here."""
    by_tag = [{"Name": "tag:stack", "Values": [STACK]}]
    group = ec2.create_security_group(
        GroupName="consumer",
        Description="consumer",
        VpcId=world.vpc,
        TagSpecifications=tags("security-group", stack=STACK),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "IpRanges": [{"CidrIp": "192.168.1.0/24"}]}],
        TagSpecifications=tags("security-group-rule", stack=STACK),
    )
    table = ec2.create_route_table(VpcId=world.vpc, TagSpecifications=tags("route-table", stack=STACK))
    endpoint = world.endpoint(ec2, world.open_service)["VpcEndpointId"]
    found = {
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets(Filters=by_tag)["Subnets"]},
        "groups": {g["GroupId"] for g in ec2.describe_security_groups(Filters=by_tag)["SecurityGroups"]},
        "rules": {r["GroupId"] for r in ec2.describe_security_group_rules(Filters=by_tag)["SecurityGroupRules"]},
        "tables": {t["RouteTableId"] for t in ec2.describe_route_tables(Filters=by_tag)["RouteTables"]},
        "endpoints": {e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints(Filters=by_tag)["VpcEndpoints"]},
    }
    expect(set(world.subnets) <= found["subnets"], True, "subnets by tag")
    expect(group in found["groups"], True, "security groups by tag")
    expect(found["rules"], {group}, "security group rules by tag")
    expect(table["RouteTable"]["RouteTableId"] in found["tables"], True, "route tables by tag")
    expect(endpoint in found["endpoints"], True, "VPC endpoints by tag")


def test_elbv2_describe_tags_limit(ec2, elbv2, iam, world):
    arns = [
        elbv2.create_target_group(Name=f"limit{i}", Protocol="TCP", Port=80, VpcId=world.vpc)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for i in range(21)
    ]
    expect(len(elbv2.describe_tags(ResourceArns=arns[:20])["TagDescriptions"]), 20, "20 ARNs")
    expect(error_of(elbv2.describe_tags, ResourceArns=arns)[0], "ValidationError", "21 ARNs")


def proxy_config(proxy_url, **config):
    request = urllib.request.Request(
        f"{proxy_url}/fault-proxy/config", data=json.dumps(config).encode(), method="POST"
    )
    return json.load(urllib.request.urlopen(request, timeout=10))


def proxy_stats(proxy_url, reset=False):
    if reset:
        request = urllib.request.Request(f"{proxy_url}/fault-proxy/reset", data=b"", method="POST")
        return json.load(urllib.request.urlopen(request, timeout=10))
    return json.load(urllib.request.urlopen(f"{proxy_url}/fault-proxy/stats", timeout=10))


def test_proxy_passthrough(proxy_url, ec2, elbv2, iam):
    proxy_config(proxy_url, throttle=0, server_error=0, latency_ms=0)
    proxy_stats(proxy_url, reset=True)
    ec2.describe_vpcs()
    elbv2.describe_load_balancers()
    iam.list_roles()
    stats = proxy_stats(proxy_url)
    expect(stats["requests"], 3, "requests counted")
    expect(stats["by_action"], {"DescribeVpcs": 1, "DescribeLoadBalancers": 1, "ListRoles": 1}, "by_action")
    # Keep-alive: three calls on one connection, each response delimited by Content-Length.
    host, port = proxy_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    for _ in range(3):
        conn.request(
            "POST",
            "/",
            body="Action=ListRoles&Version=2010-05-08",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x",
            },
        )
        response = conn.getresponse()
        body = response.read()
        expect(response.status, 200, "keep-alive call")
        expect(int(response.getheader("Content-Length")), len(body), "Content-Length")
        expect(response.getheader("Transfer-Encoding"), None, "no chunked response")
    conn.close()


def test_proxy_throttling(proxy_url, ec2, elbv2, iam):
    proxy_config(proxy_url, throttle=1, server_error=0, latency_ms=0)
    proxy_stats(proxy_url, reset=True)
    expect(error_of(ec2.describe_vpcs), ("RequestLimitExceeded", 503), "EC2 throttling")
    expect(error_of(elbv2.describe_load_balancers), ("Throttling", 400), "ELBv2 throttling")
    expect(error_of(iam.list_roles), ("Throttling", 400), "IAM throttling")
    # A throttled request never runs.
    error_of(ec2.create_vpc, CidrBlock="10.9.0.0/16", TagSpecifications=tags("vpc", never="ran"))
    stats = proxy_stats(proxy_url)
    expect((stats["requests"], stats["throttled"]), (4, 4), "throttled counted")
    proxy_config(proxy_url, throttle=0)
    never = ec2.describe_vpcs(Filters=[{"Name": "tag:never", "Values": ["ran"]}])["Vpcs"]
    expect(never, [], "the throttled CreateVpc did not run")


def test_proxy_server_errors(proxy_url, ec2, elbv2, iam):
    proxy_config(proxy_url, throttle=0, server_error=1, latency_ms=0)
    proxy_stats(proxy_url, reset=True)
    shapes = {("InternalError", 500), ("ServiceUnavailable", 503)}
    seen = set()
    for call in (ec2.describe_vpcs, elbv2.describe_load_balancers, iam.list_roles) * 4:
        error = error_of(call)
        expect(error in shapes, True, f"5xx shape of {call.__name__}: {error}")
        seen.add(error)
    expect(seen, shapes, "both 5xx kinds drawn")
    expect(proxy_stats(proxy_url)["server_errors"], 12, "server errors counted")


def test_proxy_latency_and_moto_api(proxy_url, ec2, elbv2, iam):
    proxy_config(proxy_url, throttle=1, server_error=0, latency_ms=200)
    started = time.monotonic()
    error_of(ec2.describe_vpcs)
    expect(time.monotonic() - started >= 0.2, True, "latency before each call")
    # /moto-api/ always passes, undelayed, however high the fault rates and the latency.
    proxy_config(proxy_url, latency_ms=5000)
    started = time.monotonic()
    request = urllib.request.Request(f"{proxy_url}/moto-api/reset", data=b"", method="POST")
    expect(urllib.request.urlopen(request, timeout=10).status, 200, "moto-api reset")
    expect(time.monotonic() - started < 5, True, "moto-api not delayed")
    proxy_config(proxy_url, throttle=0, latency_ms=0)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:stack", "Values": [STACK]}])["Vpcs"]
    expect(vpcs, [], "moto was reset through the proxy")


def stop(proc, how):
    """Stop a server by closing its stdin or by SIGTERM; fail if it does not exit."""
    if how == "stdin":
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"did not exit after {how}")


def test_exit_when_the_parent_dies(moto_url):
    """A dead parent takes its pipes along: the servers must exit on stdin EOF even though
    writing to their stderr then fails."""
    for script, args in (("edgeplan_moto.py", ()), ("fault_proxy.py", ("--upstream", moto_url))):
        proc, _ = start(script, *args, stderr=subprocess.PIPE)
        proc.stderr.close()
        stop(proc, "stdin")


def main():
    started = time.monotonic()
    results = []

    def run(name, test, *args):
        t0 = time.monotonic()
        try:
            test(*args)
            results.append(True)
            print(f"ok   {name} ({time.monotonic() - t0:.2f} s)", flush=True)
        except Exception:  # noqa: BLE001 -- report every failure, then the total
            results.append(False)
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()

    moto, moto_url = start("edgeplan_moto.py")
    proxy, proxy_url = start("fault_proxy.py", "--upstream", moto_url, "--seed", "7")
    print(f"moto at {moto_url}, proxy at {proxy_url} ({time.monotonic() - started:.2f} s)")
    try:
        ec2, elbv2, iam = clients(moto_url)
        world = World(ec2, elbv2)
        for name, test in [
            ("pendingAcceptance when the service requires acceptance", test_pending_acceptance),
            ("describe/accept/reject VPC endpoint connections", test_endpoint_connections),
            ("NLB and listener ARNs use /net/", test_nlb_arns),
            ("_custom_id_ for VPCs, subnets, security groups", test_custom_ids),
            ("ClientToken makes creates idempotent", test_client_tokens),
            ("service configuration filters and AZ IDs", test_service_configuration_filters),
            ("moto's own tag:KEY filters", test_native_tag_filters),
            ("ELBv2 DescribeTags takes at most 20 ARNs", test_elbv2_describe_tags_limit),
        ]:
            args = (ec2, elbv2, iam, world)
            if test is test_endpoint_connections:
                args += (moto_url,)
            run(name, test, *args)
        proxied = clients(proxy_url, retries=False)
        for name, test in [
            ("proxy forwards unchanged, keep-alive", test_proxy_passthrough),
            ("proxy throttling shapes (EC2 503, ELBv2/IAM 400)", test_proxy_throttling),
            ("proxy 5xx shapes", test_proxy_server_errors),
            ("proxy latency; /moto-api/ passes", test_proxy_latency_and_moto_api),
        ]:
            run(name, test, proxy_url, *proxied)
        run("servers exit on stdin EOF with a dead stderr", test_exit_when_the_parent_dies, moto_url)
    finally:
        run("proxy exits on SIGTERM", stop, proxy, "signal")
        run("launcher exits on stdin EOF", stop, moto, "stdin")

    passed = sum(results)
    print(f"selftest: {passed} passed, {len(results) - passed} failed ({time.monotonic() - started:.1f} s)")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
