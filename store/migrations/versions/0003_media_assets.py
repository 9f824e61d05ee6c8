"""media assets, renditions, post assets, media tasks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:41:16.980854
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('assets',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('workspace_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('storage', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('object_key', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('source_url_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('original_filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('claimed_mime', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('error_code', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('delivery_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('previews', sa.JSON(), nullable=False),
    sa.Column('upload', sa.JSON(), nullable=True),
    sa.Column('purge_at', store.models.UTCDateTime(), nullable=True),
    sa.Column('deleted_at', store.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', store.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index('ix_assets_purge', ['status', 'purge_at'], unique=False)
        batch_op.create_index('ix_assets_ws_created', ['workspace_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_assets_ws_source', ['workspace_id', 'source_url_hash'], unique=False)

    op.create_table('media_tasks',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('workspace_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('created_at', store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('media_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_tasks_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('asset_renditions',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('workspace_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('asset_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('profile_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('passthrough', sa.Boolean(), nullable=False),
    sa.Column('object_key', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('cover_key', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
    sa.Column('created_at', store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('asset_id', 'profile_key', name='uq_renditions_asset_profile')
    )
    with op.batch_alter_table('asset_renditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_renditions_asset_id'), ['asset_id'], unique=False)

    op.create_table('post_assets',
    sa.Column('post_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('asset_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('workspace_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('post_id', 'asset_id')
    )
    with op.batch_alter_table('post_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_post_assets_asset_id'), ['asset_id'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('post_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_post_assets_asset_id'))

    op.drop_table('post_assets')
    with op.batch_alter_table('asset_renditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_asset_renditions_asset_id'))

    op.drop_table('asset_renditions')
    with op.batch_alter_table('media_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_tasks_workspace_id'))

    op.drop_table('media_tasks')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_ws_source')
        batch_op.drop_index('ix_assets_ws_created')
        batch_op.drop_index('ix_assets_purge')

    op.drop_table('assets')

