"""oauth connections: PKCE secret and expiry on connections, token expiry on accounts, post deletion time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:40:00
"""
from alembic import op
import sqlalchemy as sa
import store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_ids', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('oauth_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', store.models.UTCDateTime(), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_expires_at', store.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('status_reason', sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_token_expires_at'), ['token_expires_at'], unique=False)
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', store.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_token_expires_at'))
        batch_op.drop_column('status_reason')
        batch_op.drop_column('token_expires_at')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('oauth_secret_encrypted')
        batch_op.drop_column('account_ids')
