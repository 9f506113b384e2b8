from rest_framework import serializers

from . import aws_policies
from .models import CloudAccount, Organization, User


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ("id", "name", "created_at")


class UserSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "full_name", "role", "organization", "date_joined")


class SignupInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
    organization_name = serializers.CharField(max_length=200)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class ChangePasswordInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(trim_whitespace=False, max_length=128)
    new_password = serializers.CharField(trim_whitespace=False, max_length=128)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserSerializer()


class CloudAccountSerializer(serializers.ModelSerializer):
    """Output: never the access keys, only whether the account has some."""

    has_access_keys = serializers.BooleanField(read_only=True)
    cluster_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = CloudAccount
        fields = (
            "id",
            "name",
            "aws_account_id",
            "role_arn",
            "external_id",
            "regions",
            "status",
            "last_error",
            "validation_warnings",
            "last_validated_at",
            "last_synced_at",
            "has_access_keys",
            "cluster_count",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class CloudAccountDetailSerializer(CloudAccountSerializer):
    """Detail and create responses add the documents to paste into IAM."""

    trust_policy = serializers.SerializerMethodField()
    permission_policy = serializers.SerializerMethodField()

    class Meta(CloudAccountSerializer.Meta):
        fields = (*CloudAccountSerializer.Meta.fields, "trust_policy", "permission_policy")
        read_only_fields = fields

    def get_trust_policy(self, account: CloudAccount) -> dict:
        return aws_policies.trust_policy(account.external_id)

    def get_permission_policy(self, account: CloudAccount) -> dict:
        return aws_policies.permission_policy()


class CloudAccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    role_arn = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    regions = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=40)
    access_key_id = serializers.CharField(max_length=128, required=False, allow_blank=True, write_only=True)
    secret_access_key = serializers.CharField(
        max_length=256, required=False, allow_blank=True, write_only=True, trim_whitespace=False
    )
    organization_id = serializers.IntegerField(required=False, help_text="Super admins only: the owning organization.")


class CloudAccountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    role_arn = serializers.CharField(max_length=2048, required=False, allow_blank=True)
    regions = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=40)
    access_key_id = serializers.CharField(max_length=128, required=False, allow_blank=True, write_only=True)
    secret_access_key = serializers.CharField(
        max_length=256, required=False, allow_blank=True, write_only=True, trim_whitespace=False
    )
