"""Least-privilege DynamoDB grants: named tables and named indexes, data actions only.

CDK's `Table.grant_read_write_data` adds `<table>/index/*`; here each index is named, so no statement
of a function role carries a wildcard resource for table data.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_iam as iam

from infra.storage import Storage

TABLE_READ_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
# Transactions (TransactWriteItems) are authorised per item through these same actions.
TABLE_WRITE_ACTIONS = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)


def grant_tables(
    role: iam.IRole,
    storage: Storage,
    *,
    read_write: Iterable[str],
    read_only: Iterable[str],
) -> None:
    """Read on `read_write` + `read_only` (tables and their indexes), write on `read_write` only."""
    read_write = sorted(read_write)
    read_only = sorted(read_only)
    overlap = set(read_write) & set(read_only)
    if overlap:
        raise ValueError(f"tables both read-write and read-only: {sorted(overlap)}")
    readable = read_write + read_only
    if readable:
        read_resources: list[str] = []
        for name in readable:
            read_resources.append(storage.tables[name].table_arn)
            read_resources.extend(storage.index_arns(name))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(TABLE_READ_ACTIONS), resources=read_resources)
        )
    if read_write:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(TABLE_WRITE_ACTIONS),
                resources=[storage.tables[name].table_arn for name in read_write],
            )
        )
