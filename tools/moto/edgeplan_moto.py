#!/usr/bin/env python3
"""edgeplan's launcher of moto_server: moto 5.2.5 plus the AWS behaviour our tests rely on.

Usage: python tools/moto/edgeplan_moto.py [--host 127.0.0.1] [--port 0]

Once bound it prints exactly one line, `edgeplan-moto listening on http://HOST:PORT`, then serves
(threaded) until SIGTERM/SIGINT or until stdin reaches EOF, so a test process that dies never leaves
a server behind: keep stdin a pipe from the parent.

The patches below reach into moto's internals, hence the exact version pin. Each one names the AWS
behaviour it adds (README.md beside this file says more) and is exercised by selftest.py.
"""

import argparse
import functools
import json
import logging
import os
import sys
import threading

from lifetime import exit_on_signal, exit_on_stdin_eof

MOTO_VERSION = "5.2.5"
# Tag key moto uses elsewhere to let a test choose a resource's ID (moto.utilities.id_generator).
CUSTOM_ID_TAG = "_custom_id_"
# ELBv2 DescribeTags accepts at most 20 ARNs (botocore model: ResourceArns max 20).
ELBV2_DESCRIBE_TAGS_MAX = 20


def check_moto_version():
    import moto

    if moto.__version__ != MOTO_VERSION:
        sys.exit(
            f"edgeplan-moto: needs moto {MOTO_VERSION}, found {moto.__version__} "
            "(its patches depend on moto internals); run `cargo xtask moto` to refresh the venv"
        )


def backends_in_region(region):
    """Every EC2 backend of `region`, across accounts: PrivateLink connects accounts."""
    from moto.ec2.models import ec2_backends

    # list() first: another request thread may add an account while we look.
    for account_backends in list(ec2_backends.values()):
        backend = dict(account_backends).get(region)
        if backend is not None:
            yield backend


def find_service_by_name(region, service_name):
    for backend in backends_in_region(region):
        for config in list(backend.configurations.values()):
            if config.service_name == service_name:
                return config
    return None


def service_endpoints(region, config):
    """The interface endpoints connected to an endpoint service, in any account of the region."""
    return [
        endpoint
        for backend in backends_in_region(region)
        for endpoint in list(backend.vpc_end_points.values())
        if endpoint.service_name == config.service_name
        and (endpoint.vpc_endpoint_type or "").lower() == "interface"
    ]


def patch_pending_acceptance():
    """moto makes every endpoint `available` at once. AWS makes an interface endpoint to a service
    with AcceptanceRequired wait in `pendingAcceptance` until the service owner accepts it."""
    from moto.ec2.models.vpcs import VPCBackend

    create = VPCBackend.create_vpc_endpoint

    @functools.wraps(create)
    def create_vpc_endpoint(self, *args, **kwargs):
        endpoint = create(self, *args, **kwargs)
        if (endpoint.vpc_endpoint_type or "").lower() == "interface":
            config = find_service_by_name(self.region_name, endpoint.service_name)
            if config is not None and config.acceptance_required:
                endpoint.state = "pendingAcceptance"
        return endpoint

    VPCBackend.create_vpc_endpoint = create_vpc_endpoint


def unsuccessful(resource_id, code, message):
    return {"ResourceId": resource_id, "Error": {"Code": code, "Message": message}}


def set_connection_states(response, target, allowed_from):
    """Accept/RejectVpcEndpointConnections: a per-endpoint failure is an `Unsuccessful` item, not
    an API error, as in AWS. An unknown service is an API error."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import UnknownVpcEndpointService

    service_id = response._get_param("ServiceId")
    config = response.ec2_backend.configurations.get(service_id)
    if config is None:
        raise UnknownVpcEndpointService(service_id)
    endpoints = {e.id: e for e in service_endpoints(response.region, config)}
    failed = []
    for endpoint_id in response._get_param("VpcEndpointIds", []):
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None:
            failed.append(
                unsuccessful(
                    endpoint_id,
                    "InvalidVpcEndpointId.NotFound",
                    f"The Vpc Endpoint Id '{endpoint_id}' does not exist",
                )
            )
        elif endpoint.state == target:
            continue  # already there: a retried call succeeds
        elif endpoint.state in allowed_from:
            endpoint.state = target
        else:
            failed.append(
                unsuccessful(
                    endpoint_id,
                    "IncorrectState",
                    f"The Vpc Endpoint '{endpoint_id}' is in state {endpoint.state}",
                )
            )
    return ActionResult({"Unsuccessful": failed})


CONNECTION_FILTERS = {
    "service-id": lambda c: c["ServiceId"],
    "vpc-endpoint-id": lambda c: c["VpcEndpointId"],
    "vpc-endpoint-owner": lambda c: c["VpcEndpointOwner"],
    "vpc-endpoint-state": lambda c: c["VpcEndpointState"],
}


def patch_endpoint_connections():
    """moto 5.2.5 answers HTTP 500 (NotImplementedError) to DescribeVpcEndpointConnections,
    AcceptVpcEndpointConnections and RejectVpcEndpointConnections. Responses are serialized by
    moto from botocore's EC2 model, so the XML has AWS's shape (vpcEndpointConnectionSet/item)."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import FilterNotImplementedError
    from moto.ec2.responses import EC2Response

    def describe_vpc_endpoint_connections(self):
        filters = self._filters_from_querystring()
        for name in filters:
            if name not in CONNECTION_FILTERS:
                raise FilterNotImplementedError(name, "DescribeVpcEndpointConnections")
        connections = [
            {
                "ServiceId": config.id,
                "VpcEndpointId": endpoint.id,
                "VpcEndpointOwner": endpoint.owner_id,
                "VpcEndpointState": endpoint.state,
                "CreationTimestamp": endpoint.creation_timestamp,
                "DnsEntries": endpoint.dns_entries,
                "NetworkLoadBalancerArns": config.network_load_balancer_arns,
            }
            for config in list(self.ec2_backend.configurations.values())
            for endpoint in service_endpoints(self.region, config)
        ]
        connections = [
            c
            for c in connections
            if all(CONNECTION_FILTERS[name](c) in values for name, values in filters.items())
        ]
        return ActionResult({"VpcEndpointConnections": connections})

    def accept_vpc_endpoint_connections(self):
        return set_connection_states(self, "available", {"pendingAcceptance"})

    def reject_vpc_endpoint_connections(self):
        return set_connection_states(self, "rejected", {"pendingAcceptance", "available"})

    EC2Response.describe_vpc_endpoint_connections = describe_vpc_endpoint_connections
    EC2Response.accept_vpc_endpoint_connections = accept_vpc_endpoint_connections
    EC2Response.reject_vpc_endpoint_connections = reject_vpc_endpoint_connections


def patch_nlb_arns():
    """moto writes `loadbalancer/app/` into every load balancer's ARN; AWS writes
    `loadbalancer/net/` for a network load balancer. moto keys its load balancers and tags by ARN
    and derives listener ARNs from it (`listener/net/...`), so re-keying once at creation keeps
    every later lookup working."""
    from moto.elbv2.models import ELBv2Backend

    create = ELBv2Backend.create_load_balancer

    @functools.wraps(create)
    def create_load_balancer(self, *args, **kwargs):
        lb = create(self, *args, **kwargs)
        if lb.type == "network":
            app_arn = lb.arn
            lb.arn = app_arn.replace(":loadbalancer/app/", ":loadbalancer/net/", 1)
            self.load_balancers[lb.arn] = self.load_balancers.pop(app_arn)
            self.tagging_service.copy_tags(app_arn, lb.arn)
            self.tagging_service.delete_all_tags_for_resource(app_arn)
        return lb

    ELBv2Backend.create_load_balancer = create_load_balancer


def take_custom_id(tags):
    """Remove the `_custom_id_` tag from moto's parsed tags (a list of {Key, Value}, a dict, or a
    dict of dicts by resource type) and return its value: it chooses an ID, it is no real tag."""
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict) and tag.get("Key") == CUSTOM_ID_TAG:
                tags.remove(tag)
                return tag.get("Value")
    elif isinstance(tags, dict):
        if CUSTOM_ID_TAG in tags:
            return tags.pop(CUSTOM_ID_TAG)
        for nested in tags.values():
            if isinstance(nested, dict) and CUSTOM_ID_TAG in nested:
                return nested.pop(CUSTOM_ID_TAG)
    return None


def patch_custom_ids():
    """moto 5.2.5 honours the `_custom_id_` tag for a few services but not for EC2: tests need
    VPCs, subnets and security groups with IDs they choose (vpc-0a1b2c3d4e5f60001). The chosen ID
    travels to moto's ID generator through a thread-local, as requests run on parallel threads."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import security_groups, subnets, vpcs

    chosen = threading.local()

    def generator(kind, generate):
        def generate_id():
            custom = getattr(chosen, kind, None)
            if custom is None:
                return generate()
            setattr(chosen, kind, None)
            return custom

        return generate_id

    def creator(kind, create, existing):
        @functools.wraps(create)
        def create_with_custom_id(self, *args, **kwargs):
            custom = take_custom_id(kwargs.get("tags"))
            if custom is None:
                return create(self, *args, **kwargs)
            # moto's own custom IDs fall back to a random one on a clash: a test wants to know.
            if custom in existing(self):
                raise EC2ClientError(
                    "InvalidParameterValue", f"{CUSTOM_ID_TAG} {custom} is already in use"
                )
            setattr(chosen, kind, custom)
            try:
                return create(self, *args, **kwargs)
            finally:
                setattr(chosen, kind, None)

        return create_with_custom_id

    vpcs.random_vpc_id = generator("vpc", vpcs.random_vpc_id)
    subnets.random_subnet_id = generator("subnet", subnets.random_subnet_id)
    security_groups.random_security_group_id = generator(
        "sg", security_groups.random_security_group_id
    )
    vpcs.VPCBackend.create_vpc = creator("vpc", vpcs.VPCBackend.create_vpc, lambda b: b.vpcs)
    subnets.SubnetBackend.create_subnet = creator(
        "subnet", subnets.SubnetBackend.create_subnet, lambda b: {s for zone in b.subnets.values() for s in zone}
    )
    security_groups.SecurityGroupBackend.create_security_group = creator(
        "sg",
        security_groups.SecurityGroupBackend.create_security_group,
        lambda b: {g.id for groups in b.groups.values() for g in groups.values()},
    )


# Creates that take a ClientToken, with the key of the created object in the response and where
# the backend keeps it.
IDEMPOTENT_CREATES = {
    "create_vpc_endpoint": ("VpcEndpoint", lambda b: b.vpc_end_points),
    "create_vpc_endpoint_service_configuration": ("ServiceConfiguration", lambda b: b.configurations),
    "create_route_table": ("RouteTable", lambda b: b.route_tables),
}


def patch_client_tokens():
    """moto ignores ClientToken: a retried create makes a second object. AWS returns the first
    object for the same token and parameters, and IdempotentParameterMismatch for the same token
    with other parameters. Tokens live on the backend, so /moto-api/reset forgets them."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses import EC2Response
    from moto.core.responses import ActionResult

    lock = threading.Lock()

    def idempotent(name, result_key, objects):
        create = getattr(EC2Response, name)

        @functools.wraps(create)
        def create_once(self):
            token = self._get_param("ClientToken")
            if not token:
                return create(self)
            params = {k: v for k, v in self.params.items() if k != "ClientToken"}
            fingerprint = json.dumps(params, sort_keys=True, default=str)
            backend = self.ec2_backend
            # Held across the create, so two concurrent retries cannot both create.
            with lock:
                tokens = backend.__dict__.setdefault("_edgeplan_client_tokens", {})
                seen = tokens.get((name, token))
                if seen is not None:
                    object_id, seen_fingerprint = seen
                    if seen_fingerprint != fingerprint:
                        raise EC2ClientError(
                            "IdempotentParameterMismatch",
                            f"The client token {token} was used with different parameters",
                        )
                    existing = objects(backend).get(object_id)
                    if existing is not None:
                        return ActionResult({result_key: existing})
                result = create(self)
                tokens[(name, token)] = (result.result[result_key].id, fingerprint)
                return result

        setattr(EC2Response, name, create_once)

    for name, (result_key, objects) in IDEMPOTENT_CREATES.items():
        idempotent(name, result_key, objects)


def patch_service_configuration_filters():
    """moto ignores the Filters of DescribeVpcEndpointServiceConfigurations (it returns every
    service). AWS filters by service-id, service-name, service-state, tag:KEY and tag-key; moto's
    generic EC2 filter already knows these for a tagged resource."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response
    from moto.ec2.utils import generic_filter

    def describe_vpc_endpoint_service_configurations(self):
        configs = self.ec2_backend.describe_vpc_endpoint_service_configurations(
            self._get_param("ServiceIds", [])
        )
        filtered = generic_filter(self._filters_from_querystring(), configs)
        return ActionResult({"ServiceConfigurations": filtered})

    EC2Response.describe_vpc_endpoint_service_configurations = (
        describe_vpc_endpoint_service_configurations
    )


def patch_service_availability_zone_ids():
    """AWS reports an endpoint service's AZ IDs (AvailabilityZoneIds) next to its AZ names, in
    DescribeVpcEndpointServiceConfigurations and DescribeVpcEndpointServices; moto only the names.
    AZ names differ between accounts, so a consumer must match subnets by AZ ID."""
    from moto.ec2.models.vpc_service_configuration import VPCServiceConfiguration

    def availability_zone_ids(self):
        ids = {z.name: z.zone_id for z in self.ec2_backend.describe_availability_zones()}
        return [ids[name] for name in self.availability_zones if name in ids]

    to_dict = VPCServiceConfiguration.to_dict

    @functools.wraps(to_dict)
    def to_dict_with_zone_ids(self):
        return {**to_dict(self), "AvailabilityZoneIds": self.availability_zone_ids}

    VPCServiceConfiguration.availability_zone_ids = property(availability_zone_ids)
    VPCServiceConfiguration.to_dict = to_dict_with_zone_ids


def patch_elbv2_describe_tags_limit():
    """AWS rejects DescribeTags with more than 20 ARNs (ValidationError); moto answers any number.
    A backend that batches its tag reads must chunk them, and the tests should catch it if not."""
    from moto.elbv2.exceptions import ValidationError
    from moto.elbv2.responses import ELBV2Response

    describe_tags = ELBV2Response.describe_tags

    @functools.wraps(describe_tags)
    def describe_tags_checked(self):
        arns = self._get_param("ResourceArns", [])
        if len(arns) > ELBV2_DESCRIBE_TAGS_MAX:
            raise ValidationError(
                f"1 validation error detected: Value '{arns}' at 'resourceArns' failed to satisfy "
                f"constraint: Member must have length less than or equal to {ELBV2_DESCRIBE_TAGS_MAX}"
            )
        return describe_tags(self)

    ELBV2Response.describe_tags = describe_tags_checked


def patch_moto():
    check_moto_version()
    patch_pending_acceptance()
    patch_endpoint_connections()
    patch_nlb_arns()
    patch_custom_ids()
    patch_client_tokens()
    patch_service_configuration_filters()
    patch_service_availability_zone_ids()
    patch_elbv2_describe_tags_limit()


# A read-only call per service, as the SDKs send it (query protocol, SigV4 credential scope).
WARM_UP_CALLS = (
    ("ec2", "Action=DescribeVpcs&Version=2016-11-15"),
    ("elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01"),
    ("iam", "Action=ListRoles&Version=2010-05-08"),
)


def warm_up(app):
    """moto builds a service's app and loads its botocore model on the service's first call
    (0.5 s for EC2): pay that before listening, so tests and benchmarks see steady call times."""
    from werkzeug.test import Client

    client = Client(app)
    for service, form in WARM_UP_CALLS:
        # eu-west-1: the region of the seed spec and the tests.
        scope = f"testing/20260101/eu-west-1/{service}/aws4_request"
        response = client.post(
            "/",
            data=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=x",
            },
        )
        if response.status_code != 200:
            sys.exit(f"edgeplan-moto: warm-up call to {service} failed: HTTP {response.status_code}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()

    patch_moto()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # One line per request on stderr would fill a pipe nobody reads; errors still print.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    warm_up(app)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    port = server.socket.getsockname()[1]
    # moto builds some URLs (e.g. SQS queue URLs) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    exit_on_signal()
    exit_on_stdin_eof("edgeplan-moto")
    print(f"edgeplan-moto listening on http://{args.host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
