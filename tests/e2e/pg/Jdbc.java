// The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) against doracost's endpoint, as a
// Java BI tool uses it: connect with a password, a parameterised PreparedStatement run often enough
// to be prepared on the server (prepareThreshold), typed getters, the metadata a tool's table
// picker asks for. Prints one JSON object; run with
//   java -cp /usr/share/java/postgresql.jar Jdbc.java PORT PASSWORD SERVICE
import java.sql.*;
import java.util.*;

public class Jdbc {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/doracost?sslmode=disable&prepareThreshold=2";
        Properties props = new Properties();
        props.setProperty("user", "doracost");
        props.setProperty("password", args[1]);
        StringBuilder out = new StringBuilder("{");
        try (Connection conn = DriverManager.getConnection(url, props)) {
            out.append("\"product\":\"").append(conn.getMetaData().getDatabaseProductVersion()).append("\"");
            // Run five times: from the second on, pgjdbc uses a named server-side statement.
            long total = 0;
            int rows = 0;
            String sql = "SELECT name, deployments, change_failure_rate, period_start FROM dora_monthly "
                + "WHERE scope = 'service' AND name = ? ORDER BY period_start";
            try (PreparedStatement st = conn.prepareStatement(sql)) {
                for (int i = 0; i < 5; i++) {
                    st.setString(1, args[2]);
                    try (ResultSet rs = st.executeQuery()) {
                        while (rs.next()) {
                            if (i == 0) {
                                total += rs.getLong("deployments");
                                rows++;
                                rs.getDouble("change_failure_rate");
                                rs.getDate("period_start");
                            }
                        }
                    }
                }
            }
            out.append(",\"rows\":").append(rows).append(",\"deployments\":").append(total);
            List<String> views = new ArrayList<>();
            try (ResultSet rs = conn.getMetaData().getTables(null, "public", "dora_%", new String[] {"VIEW", "TABLE"})) {
                while (rs.next()) {
                    views.add(rs.getString("TABLE_NAME"));
                }
            }
            out.append(",\"tables\":").append(views.size());
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.setFetchSize(50);
                int paged = 0;
                try (ResultSet rs = st.executeQuery("SELECT name FROM dora_daily WHERE scope = 'service'")) {
                    while (rs.next()) {
                        paged++;
                    }
                }
                out.append(",\"paged\":").append(paged);
            }
            conn.rollback();
        }
        System.out.println(out.append("}"));
    }
}
