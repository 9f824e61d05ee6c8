"""campaigns, drafts, approvals: the campaign graph on posts and runs, review records, run options

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:02:57.910768
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_thread_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('campaign_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('step_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('parent_post_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('interaction_type', sqlmodel.sql.sqltypes.AutoString(length=20), server_default='post', nullable=False))
        batch_op.add_column(sa.Column('post_type', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch_op.add_column(sa.Column('offset_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('requires_approval', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('review_state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', store.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('review_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.create_index('ix_posts_ws_campaign', ['workspace_id', 'campaign_id'], unique=False)

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('options', sa.JSON(), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('published_at', store.models.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('published_at')
        batch_op.drop_column('options')
        batch_op.drop_column('campaign')

    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_ws_campaign')
        batch_op.drop_column('review_note')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('review_state')
        batch_op.drop_column('requires_approval')
        batch_op.drop_column('offset_seconds')
        batch_op.drop_column('post_type')
        batch_op.drop_column('interaction_type')
        batch_op.drop_column('parent_post_id')
        batch_op.drop_column('step_id')
        batch_op.drop_column('campaign_id')
        batch_op.drop_column('provider_thread_id')

