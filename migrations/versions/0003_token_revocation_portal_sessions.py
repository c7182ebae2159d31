"""token revocation, server-side portal sessions, the request fingerprint of idempotent uploads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 23:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('request_sha256', sa.String(length=64), nullable=True))
    op.create_table('portal_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_portal_sessions_token_id_api_tokens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_portal_sessions'))
    )
    op.create_index(op.f('ix_portal_sessions_token_id'), 'portal_sessions', ['token_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_portal_sessions_token_id'), table_name='portal_sessions')
    op.drop_table('portal_sessions')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('request_sha256')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('revoked_at')
