"""data deletion requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:24:39.868063
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('data_deletion_requests',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('user_id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('accounts', sa.Integer(), nullable=False),
    sa.Column('created_at', store.models.UTCDateTime(), nullable=False),
    sa.Column('completed_at', store.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('data_deletion_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_deletion_requests_user_id_hash'), ['user_id_hash'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('data_deletion_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_deletion_requests_user_id_hash'))

    op.drop_table('data_deletion_requests')

