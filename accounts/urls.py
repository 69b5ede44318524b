"""`/api` routes for accounts, users, redemptions, groups, options and models (included under `api/`).

Specific `user/...` routes come before `user/<id>`; names on the public routes let the strict
rate limit (accounts.ratelimit) find them.
"""

from __future__ import annotations

from django.urls import path, re_path

from . import api, api_auth, api_redemptions, api_self, api_users

urlpatterns = [
    path("status", api.StatusView.as_view()),
    re_path(r"^notice/?$", api_auth.OptionTextView.as_view(option="Notice")),
    re_path(r"^about/?$", api_auth.OptionTextView.as_view(option="About")),
    re_path(r"^home_page_content/?$", api_auth.OptionTextView.as_view(option="HomePageContent")),
    re_path(r"^verification/?$", api_auth.VerificationView.as_view(), name="api_verification"),
    re_path(r"^reset_password/?$", api_auth.ResetPasswordEmailView.as_view(), name="api_reset_password"),
    re_path(r"^user/register/?$", api_auth.RegisterView.as_view(), name="api_user_register"),
    re_path(r"^user/login/?$", api_auth.LoginView.as_view(), name="api_user_login"),
    re_path(r"^user/logout/?$", api_auth.LogoutView.as_view()),
    re_path(r"^user/reset/?$", api_auth.ResetPasswordView.as_view(), name="api_user_reset"),
    re_path(r"^user/self/?$", api.UserSelfView.as_view()),
    re_path(r"^user/token/?$", api.UserAccessTokenView.as_view()),
    re_path(r"^user/aff/?$", api_self.AffCodeView.as_view()),
    re_path(r"^user/topup/?$", api_self.TopUpView.as_view()),
    re_path(r"^user/available_models/?$", api_self.AvailableModelsView.as_view()),
    re_path(r"^user/dashboard/?$", api_self.DashboardView.as_view()),
    re_path(r"^user/search/?$", api_users.UserSearchView.as_view()),
    re_path(r"^user/manage/?$", api_users.UserManageView.as_view()),
    re_path(r"^user/?$", api_users.UserCollectionView.as_view()),
    re_path(r"^user/(?P<user_id>[0-9]+)/?$", api_users.UserDetailView.as_view()),
    re_path(r"^topup/?$", api_users.AdminTopUpView.as_view()),
    re_path(r"^group/?$", api_users.GroupListView.as_view()),
    re_path(r"^models/?$", api_users.ModelsView.as_view()),
    re_path(r"^option/?$", api_users.OptionView.as_view()),
    re_path(r"^redemption/?$", api_redemptions.RedemptionCollectionView.as_view()),
    re_path(r"^redemption/search/?$", api_redemptions.RedemptionSearchView.as_view()),
    re_path(r"^redemption/(?P<redemption_id>[0-9]+)/?$", api_redemptions.RedemptionDetailView.as_view()),
    re_path(r"^token/?$", api.TokenCollectionView.as_view()),
    re_path(r"^token/search/?$", api.TokenSearchView.as_view()),
    re_path(r"^token/(?P<key_id>[0-9]+)/?$", api.TokenDetailView.as_view()),
]
